//! The connection table against spoofed traffic: DR sees only the client's half of a
//! connection, so a flood of spoofed SYN-then-ACK pairs looks like handshakes completing. An
//! entry earns the established timeout only by showing more than a handshake; until then it is
//! evicted first, so real clients keep getting in.

use xvs_core::{DropReason, Verdict};
use xvs_testkit::lab::*;
use xvs_testkit::pkt::*;

/// Spoofed source number `n`: 100.64.0.0/10 and up, never a real client here.
fn spoofed(n: u32) -> String {
    let b = (0x6440_0000u32 + n).to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

#[test]
fn after_a_spoofed_handshake_flood_of_three_times_the_table_real_clients_get_in() {
    let (mut fw, table, stats) = forwarder_with_table(1024);
    let snap = snapshot();
    let cap = table.capacity() as u32;
    // The flood: SYN then ACK from 3× capacity spoofed sources, no data, within 2 s.
    for n in 0..3 * cap {
        let src = spoofed(n);
        let t = 1 + u64::from(n * 2 / (3 * cap));
        for p in [
            tcp(&src, 1024, VIP_DR, 80).syn(),
            tcp(&src, 1024, VIP_DR, 80).ack(),
        ] {
            run(&mut fw, &snap, EXT, &from_client(&p), t);
        }
    }
    assert!(
        table.len() as u32 > cap * 9 / 10,
        "the flood filled the table: {} of {cap}",
        table.len()
    );
    // Real clients, right after it: handshake, request, more data.
    let (mut served, tries) = (0, 500u16);
    for k in 0..tries {
        let port = 20_000 + k;
        let ok = session(CLIENT, port, VIP_DR, 80).iter().all(|p| {
            matches!(
                run(&mut fw, &snap, EXT, &from_client(p), 3).0,
                Verdict::Tx { .. }
            )
        });
        served += u32::from(ok);
    }
    assert!(
        served * 100 >= u32::from(tries) * 99,
        "{served} of {tries} real connections got through; table_full drops: {}",
        stats.global().drops[DropReason::TableFull as usize]
    );
    // And they hold their slots: a second flood does not push them out.
    for n in 0..3 * cap {
        let src = spoofed(10 * cap + n);
        for p in [
            tcp(&src, 1024, VIP_DR, 80).syn(),
            tcp(&src, 1024, VIP_DR, 80).ack(),
        ] {
            run(&mut fw, &snap, EXT, &from_client(&p), 4);
        }
    }
    let still = (0..tries)
        .filter(|k| {
            let p = tcp(CLIENT, 20_000 + k, VIP_DR, 80).ack();
            matches!(
                run(&mut fw, &snap, EXT, &from_client(&p), 5).0,
                Verdict::Tx { .. }
            )
        })
        .count();
    assert!(
        still * 100 >= usize::from(tries) * 99,
        "{still} of {tries} verified connections survived a second flood"
    );
}
