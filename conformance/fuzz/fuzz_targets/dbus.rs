//! The systemd driver's D-Bus message parser (src/cgroups/systemd/dbus.rs)
//! on whatever the bus could send: `Message::length` on the first bytes,
//! then `Message::decode` on a message of that length, as `Bus::receive`
//! does. It must never panic; a message it decodes must encode back (as
//! little-endian) to bytes that decode to the same message.
#![no_main]

use carte::cgroups::systemd::dbus::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(total)) = Message::length(data) else {
        return;
    };
    let Some(bytes) = data.get(..total) else {
        return;
    };
    if let Ok(msg) = Message::decode(bytes) {
        let again = Message::decode(&msg.encode()).expect("an encoded message decodes");
        // A NaN double is not equal to itself; compare the wire form then.
        assert!(again == msg || again.encode() == msg.encode());
    }
});
