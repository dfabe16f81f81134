# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_carte_global_optspecs
    string join \n v/version root= log= log-format= debug systemd-cgroup rootless= h/help
end

function __fish_carte_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_carte_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_carte_using_subcommand
    set -l cmd (__fish_carte_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c carte -n "__fish_carte_needs_command" -l root -d 'Directory for container state (default /run/carte, or $XDG_RUNTIME_DIR/carte when not root)' -r -F
complete -c carte -n "__fish_carte_needs_command" -l log -d 'Write log lines to FILE (JSON or text, see --log-format)' -r -F
complete -c carte -n "__fish_carte_needs_command" -l log-format -r -f -a "text\t''
json\t''"
complete -c carte -n "__fish_carte_needs_command" -l rootless -d 'Rootless mode: true, false or auto (rootless when not root, or when root of a user namespace that does not map every id)' -r
complete -c carte -n "__fish_carte_needs_command" -s v -l version -d 'Print the version (-v, as runc; -V and --version too)'
complete -c carte -n "__fish_carte_needs_command" -l debug -d 'Log each phase with its duration'
complete -c carte -n "__fish_carte_needs_command" -l systemd-cgroup -d 'create and run: make the cgroup a systemd transient scope (cgroupsPath "slice:prefix:name"); later verbs follow state.json'
complete -c carte -n "__fish_carte_needs_command" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_needs_command" -f -a "create" -d 'Create a container: set it up and leave it waiting for start'
complete -c carte -n "__fish_carte_needs_command" -f -a "start" -d 'Run the user\'s process of a created container'
complete -c carte -n "__fish_carte_needs_command" -f -a "state" -d 'Print the OCI state of a container as JSON'
complete -c carte -n "__fish_carte_needs_command" -f -a "kill" -d 'Send a signal (default SIGTERM) to the container\'s init'
complete -c carte -n "__fish_carte_needs_command" -f -a "delete" -d 'Delete a stopped container (with --force, any container)'
complete -c carte -n "__fish_carte_needs_command" -f -a "run" -d 'Create and start a container, wait for it and pass on its exit status'
complete -c carte -n "__fish_carte_needs_command" -f -a "exec" -d 'Run a new process in a running container'
complete -c carte -n "__fish_carte_needs_command" -f -a "list" -d 'List the containers under --root'
complete -c carte -n "__fish_carte_needs_command" -f -a "pause" -d 'Freeze every process of a running container'
complete -c carte -n "__fish_carte_needs_command" -f -a "resume" -d 'Thaw a paused container'
complete -c carte -n "__fish_carte_needs_command" -f -a "ps" -d 'The processes of a container'
complete -c carte -n "__fish_carte_needs_command" -f -a "update" -d 'Change the resource limits of a container'
complete -c carte -n "__fish_carte_needs_command" -f -a "events" -d 'Print the container\'s cgroup statistics and OOM events as JSON'
complete -c carte -n "__fish_carte_needs_command" -f -a "features" -d 'Print what this carte supports (runtime-spec features.md)'
complete -c carte -n "__fish_carte_needs_command" -f -a "spec" -d 'Write a default config.json'
complete -c carte -n "__fish_carte_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c carte -n "__fish_carte_using_subcommand create" -s b -l bundle -d 'Path to the bundle (the directory holding config.json)' -r -F
complete -c carte -n "__fish_carte_using_subcommand create" -l pid-file -d 'Write the container\'s init pid to FILE' -r -F
complete -c carte -n "__fish_carte_using_subcommand create" -l console-socket -d 'Unix socket that receives the pty master when process.terminal is true' -r -F
complete -c carte -n "__fish_carte_using_subcommand create" -l preserve-fds -d 'Pass N extra file descriptors (3 .. 3+N-1) on to the container' -r
complete -c carte -n "__fish_carte_using_subcommand create" -l no-pivot -d 'Use MS_MOVE and chroot instead of pivot_root'
complete -c carte -n "__fish_carte_using_subcommand create" -l no-new-keyring -d 'Do not create a new session keyring'
complete -c carte -n "__fish_carte_using_subcommand create" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand start" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand state" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand kill" -s a -l all -d 'Signal every process in the container'
complete -c carte -n "__fish_carte_using_subcommand kill" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand delete" -s f -l force
complete -c carte -n "__fish_carte_using_subcommand delete" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand run" -s b -l bundle -d 'Path to the bundle (the directory holding config.json)' -r -F
complete -c carte -n "__fish_carte_using_subcommand run" -l pid-file -d 'Write the container\'s init pid to FILE' -r -F
complete -c carte -n "__fish_carte_using_subcommand run" -l console-socket -d 'Unix socket that receives the pty master when process.terminal is true' -r -F
complete -c carte -n "__fish_carte_using_subcommand run" -l preserve-fds -d 'Pass N extra file descriptors (3 .. 3+N-1) on to the container' -r
complete -c carte -n "__fish_carte_using_subcommand run" -s d -l detach -d 'Return once the container is started'
complete -c carte -n "__fish_carte_using_subcommand run" -l keep -d 'Do not delete the container after it exits'
complete -c carte -n "__fish_carte_using_subcommand run" -l no-pivot -d 'Use MS_MOVE and chroot instead of pivot_root'
complete -c carte -n "__fish_carte_using_subcommand run" -l no-new-keyring -d 'Do not create a new session keyring'
complete -c carte -n "__fish_carte_using_subcommand run" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand exec" -s p -l process -d 'An OCI process object (JSON) to run instead of the command line' -r -F
complete -c carte -n "__fish_carte_using_subcommand exec" -l cwd -r -F
complete -c carte -n "__fish_carte_using_subcommand exec" -s e -l env -d 'KEY=VALUE, added to the config\'s environment (repeatable)' -r
complete -c carte -n "__fish_carte_using_subcommand exec" -s u -l user -d 'UID[:GID]' -r
complete -c carte -n "__fish_carte_using_subcommand exec" -s g -l additional-gids -r
complete -c carte -n "__fish_carte_using_subcommand exec" -s c -l cap -d 'Add a capability to the bounding, effective and permitted sets' -r
complete -c carte -n "__fish_carte_using_subcommand exec" -l console-socket -r -F
complete -c carte -n "__fish_carte_using_subcommand exec" -l pid-file -r -F
complete -c carte -n "__fish_carte_using_subcommand exec" -l preserve-fds -r
complete -c carte -n "__fish_carte_using_subcommand exec" -l apparmor -d 'AppArmor profile for the process (an error where AppArmor is off)' -r
complete -c carte -n "__fish_carte_using_subcommand exec" -l process-label -d 'SELinux label for the process (ignored with a warning where SELinux is off)' -r
complete -c carte -n "__fish_carte_using_subcommand exec" -l cgroup -d 'Run the process in an existing sub-cgroup of the container\'s: [CONTROLLER[,CONTROLLER...]:]PATH (repeatable, as runc 1.1)' -r
complete -c carte -n "__fish_carte_using_subcommand exec" -s t -l tty
complete -c carte -n "__fish_carte_using_subcommand exec" -s d -l detach
complete -c carte -n "__fish_carte_using_subcommand exec" -l no-new-privs
complete -c carte -n "__fish_carte_using_subcommand exec" -l ignore-paused -d 'Exec even into a paused container'
complete -c carte -n "__fish_carte_using_subcommand exec" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand list" -s f -l format -r -f -a "table\t''
json\t''"
complete -c carte -n "__fish_carte_using_subcommand list" -s q -l quiet -d 'Only the ids'
complete -c carte -n "__fish_carte_using_subcommand list" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand pause" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand resume" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand ps" -s f -l format -r -f -a "table\t''
json\t''"
complete -c carte -n "__fish_carte_using_subcommand ps" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand update" -s r -l resources -d 'A JSON OCI LinuxResources object, from FILE or from stdin with \'-\'' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l blkio-weight -d 'Block IO weight, 10 to 1000' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l cpu-period -d 'CPU CFS period (µs)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l cpu-quota -d 'CPU CFS quota (µs) per period; -1 for none' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l cpu-burst -d 'CPU CFS burst (µs)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l cpu-share -d 'CPU shares (relative weight)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l cpu-rt-period -d 'CPU realtime period (µs)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l cpu-rt-runtime -d 'CPU realtime runtime (µs) per period' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l cpuset-cpus -d 'CPUs to use (0-3, 0,1)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l cpuset-mems -d 'Memory nodes to use' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l cpu-idle -d '1 to make the cgroup SCHED_IDLE, 0 for the default' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l kernel-memory -d 'Kernel memory limit (obsolete: the kernel dropped it)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l kernel-memory-tcp -d 'Kernel TCP memory limit (obsolete)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l memory -d 'Memory limit (bytes, or with a unit: 512k, 100m, 1g); -1 for none' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l memory-reservation -d 'Memory reservation (soft limit)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l memory-swap -d 'Memory plus swap limit; -1 for unlimited swap' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l pids-limit -d 'Maximum number of pids; -1 for none' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l l3-cache-schema -d 'Intel RDT L3 cache schema (not supported)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -l mem-bw-schema -d 'Intel RDT memory bandwidth schema (not supported)' -r
complete -c carte -n "__fish_carte_using_subcommand update" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand events" -l interval -d 'Time between two statistics (Go duration: 5s, 500ms)' -r
complete -c carte -n "__fish_carte_using_subcommand events" -l stats -d 'Print the statistics once and exit'
complete -c carte -n "__fish_carte_using_subcommand events" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand features" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand spec" -s b -l bundle -r -F
complete -c carte -n "__fish_carte_using_subcommand spec" -l rootless -d 'A config for running without root'
complete -c carte -n "__fish_carte_using_subcommand spec" -s h -l help -d 'Print help'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "create" -d 'Create a container: set it up and leave it waiting for start'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "start" -d 'Run the user\'s process of a created container'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "state" -d 'Print the OCI state of a container as JSON'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "kill" -d 'Send a signal (default SIGTERM) to the container\'s init'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "delete" -d 'Delete a stopped container (with --force, any container)'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "run" -d 'Create and start a container, wait for it and pass on its exit status'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "exec" -d 'Run a new process in a running container'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "list" -d 'List the containers under --root'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "pause" -d 'Freeze every process of a running container'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "resume" -d 'Thaw a paused container'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "ps" -d 'The processes of a container'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "update" -d 'Change the resource limits of a container'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "events" -d 'Print the container\'s cgroup statistics and OOM events as JSON'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "features" -d 'Print what this carte supports (runtime-spec features.md)'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "spec" -d 'Write a default config.json'
complete -c carte -n "__fish_carte_using_subcommand help; and not __fish_seen_subcommand_from create start state kill delete run exec list pause resume ps update events features spec help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
