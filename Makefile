# Build and install carte as a system runtime:
#   make                          the release binary (static, see .cargo/config.toml)
#   make install PREFIX=/usr      binary, man pages, completions, docs (DESTDIR honoured)
#   make uninstall PREFIX=/usr    removes exactly what install put there
#   make docs                     regenerates man/ and completions/ (committed)

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MAN8DIR ?= $(DATADIR)/man/man8
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/vendor-completions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
DOCDIR ?= $(DATADIR)/doc/carte

CARGO ?= cargo
TARGET ?= x86_64-unknown-linux-gnu
CARGO_TARGET_DIR ?= target
BIN := $(CARGO_TARGET_DIR)/$(TARGET)/release/carte
INSTALL ?= install

MANPAGES := $(sort $(wildcard man/*.8))
DOCS := README.md $(sort $(wildcard docs/*.md docs/*.svg))

.PHONY: all build install uninstall docs

all: build

build:
	$(CARGO) build --release -p carte --bin carte

docs:
	$(CARGO) run -q -p carte-gen-docs

# install does not build: a root `make install` after a user's `make`
# installs that build and leaves target/ alone.
install:
	@test -x $(BIN) || { echo "make install: $(BIN) is missing; run make first" >&2; exit 1; }
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MAN8DIR) $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/carte
	$(INSTALL) -m 0644 $(MANPAGES) $(DESTDIR)$(MAN8DIR)/
	$(INSTALL) -m 0644 completions/carte.bash $(DESTDIR)$(BASHCOMPDIR)/carte
	$(INSTALL) -m 0644 completions/_carte $(DESTDIR)$(ZSHCOMPDIR)/_carte
	$(INSTALL) -m 0644 completions/carte.fish $(DESTDIR)$(FISHCOMPDIR)/carte.fish
	$(INSTALL) -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/carte
	rm -f $(addprefix $(DESTDIR)$(MAN8DIR)/,$(notdir $(MANPAGES)))
	rm -f $(DESTDIR)$(BASHCOMPDIR)/carte $(DESTDIR)$(ZSHCOMPDIR)/_carte \
		$(DESTDIR)$(FISHCOMPDIR)/carte.fish
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS)))
	-rmdir $(DESTDIR)$(DOCDIR)
