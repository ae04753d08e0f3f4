//! Command JSON of any shape, as a client sends it, parses or is refused; a parsed command run
//! against an org (as its owner and as a stranger) either records events or is refused, never
//! panics, and a refused command changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permledger_domain::testkit::TestLedger;
use permledger_domain::{Command, CommandMeta, UserId};

fn seeded() -> TestLedger {
    let mut l = TestLedger::default();
    for json in [
        r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
        r#"{"type":"create_team","org":"acme","team":"support"}"#,
        r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#,
        r#"{"type":"invite","org":"acme","invite":"b","email":"bob@x.test","role":"org_member"}"#,
    ] {
        l.run("ann", json).expect("the seed story is accepted");
    }
    l.run("bob", r#"{"type":"accept_invite","org":"acme","invite":"b"}"#)
        .expect("bob joins");
    l
}

fuzz_target!(|data: &[u8]| {
    let Ok(cmd) = serde_json::from_slice::<Command>(data) else {
        return;
    };
    for actor in ["ann", "bob", "zed"] {
        let mut l = seeded();
        let before = (l.state.clone(), l.events.len());
        let meta = CommandMeta::new(UserId::new(actor).expect("a valid id"));
        if l.execute(&cmd, &meta).is_err() {
            assert_eq!((l.state.clone(), l.events.len()), before, "a refused command changed the state");
        }
    }
});
