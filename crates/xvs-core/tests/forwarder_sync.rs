//! Connection sync between two directors: what a master sends of its table, and a backup that
//! installed it forwarding the established flow to the same real server (where without it the
//! flow's next segment would be a stray left to the host, which answers with a reset).

use xvs_core::conn::EntryKind;
use xvs_core::{SyncReject, Time, Verdict};
use xvs_testkit::lab::*;
use xvs_testkit::pkt::*;
use xvs_wire::ipvs_sync::{MessageBuilder, SyncMessage, flags};

/// Sweeps the whole table and returns what it would send.
fn export(
    fw: &mut xvs_core::Forwarder,
    secs: u64,
    refresh: u32,
) -> Vec<xvs_wire::ipvs_sync::SyncConn> {
    let snap = snapshot();
    let mut out = Vec::new();
    let shards = fw.table().shard_count();
    fw.sweep_export(
        &snap,
        0,
        shards,
        Time::from_millis(secs * 1000),
        refresh,
        &mut out,
    );
    out
}

#[test]
fn an_established_connection_goes_to_the_backup_which_carries_it_on() {
    let snap = snapshot();
    let mut master = forwarder();
    // A DR handshake and request on the master.
    for p in session(CLIENT, 40_000, VIP_DR, 80) {
        let (v, _) = run(&mut master, &snap, EXT, &from_client(&p), 1);
        assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
    }
    let sent = export(&mut master, 2, u32::MAX);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let c = sent[0];
    assert_eq!((c.protocol, c.state, c.cport, c.vport), (6, 1, 40_000, 80));
    assert_eq!(
        c.flags,
        flags::DROUTE | 0x80,
        "DR|NOOUTPUT, active: as IPVS sends it"
    );
    assert_eq!(c.timeout, 900);
    // Sent once; not again while nothing changes (the refresh period is far away).
    assert!(export(&mut master, 3, u32::MAX).is_empty());
    // Through the wire format and back.
    let mut buf = [0u8; 1472];
    let mut m = MessageBuilder::new(&mut buf, 1).unwrap();
    assert!(m.push(&c));
    let n = m.finish();
    let got: Vec<_> = SyncMessage::new_checked(&buf[..n])
        .unwrap()
        .conns()
        .collect::<Result<_, _>>()
        .unwrap();

    // Without sync, the backup has no connection for the flow's next segment.
    let mut cold = forwarder();
    let next = from_client(&tcp(CLIENT, 40_000, VIP_DR, 80).ack().payload(b"more"));
    let (v, _) = run(&mut cold, &snap, EXT, &next, 5);
    assert_eq!(v, Verdict::Drop(xvs_core::DropReason::NoConnection));
    // With it, the same real server (the master sent the request to this MAC).
    let mut probe = forwarder();
    let mut rs_first = None;
    for p in session(CLIENT, 40_000, VIP_DR, 80) {
        let (_, out) = run(&mut probe, &snap, EXT, &from_client(&p), 1);
        rs_first = Some(out[..6].to_vec());
    }
    let mut backup = forwarder();
    backup
        .install_synced(&snap, &got[0], Time::from_millis(4000))
        .unwrap();
    // Received, not forwarded here: never sent on, not even when every entry is due.
    assert!(export(&mut backup, 4, 1).is_empty());
    let (v, out) = run(&mut backup, &snap, EXT, &next, 5);
    assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
    assert_eq!(
        Some(out[..6].to_vec()),
        rs_first,
        "the same real server's MAC"
    );
    // Nothing new to send at once (the state is the one received)…
    assert!(export(&mut backup, 6, u32::MAX).is_empty());
    // …but forwarded here now, it is this director's to refresh: a director that took the
    // flow over sends it to the one that comes back.
    assert_eq!(export(&mut backup, 7, 1).len(), 1);
}

#[test]
fn a_nat_connection_gets_its_reply_entry_and_refreshes_are_spread() {
    let snap = snapshot();
    let mut master = forwarder();
    for p in session(CLIENT, 41_000, VIP_NAT, 80) {
        run(&mut master, &snap, EXT, &from_client(&p), 1);
    }
    let c = export(&mut master, 2, u32::MAX);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].flags & flags::FWD_MASK, flags::MASQ);
    let mut backup = forwarder();
    backup
        .install_synced(&snap, &c[0], Time::from_millis(3000))
        .unwrap();
    let mut kinds = Vec::new();
    backup.table().for_each(|e| kinds.push(e.kind));
    kinds.sort_by_key(|k| *k as u8);
    assert_eq!(kinds, [EntryKind::Forward, EntryKind::Reply]);
    // refresh 1: every entry is due every second.
    assert_eq!(export(&mut master, 3, 1).len(), 1);
}

#[test]
fn what_the_backup_cannot_bind_is_refused_by_reason() {
    let snap = snapshot();
    let mut master = forwarder();
    for p in session(CLIENT, 42_000, VIP_DR, 80) {
        run(&mut master, &snap, EXT, &from_client(&p), 1);
    }
    let mut c = export(&mut master, 2, u32::MAX)[0];
    let mut backup = forwarder();
    let mut other = c;
    other.vaddr = xvs_wire::summary::v4_mapped([192, 0, 2, 99]);
    assert_eq!(
        backup.install_synced(&snap, &other, Time::from_millis(3000)),
        Err(SyncReject::UnknownService)
    );
    c.daddr = xvs_wire::summary::v4_mapped([192, 0, 2, 98]);
    assert_eq!(
        backup.install_synced(&snap, &c, Time::from_millis(3000)),
        Err(SyncReject::UnknownReal)
    );
    assert_eq!(backup.table().len(), 0);
}

#[test]
fn a_refresh_second_the_sweep_skipped_is_made_up_at_the_next_sweep() {
    let snap = snapshot();
    let mut master = forwarder();
    for port in 0..40u16 {
        for p in session(CLIENT, 43_000 + port, VIP_DR, 80) {
            run(&mut master, &snap, EXT, &from_client(&p), 1);
        }
    }
    assert_eq!(
        export(&mut master, 2, 10).len(),
        40,
        "each sent once at first"
    );
    // Seconds 3..=12 swept one by one: each connection refreshed exactly once.
    let every: usize = (3..=12).map(|s| export(&mut master, s, 10).len()).sum();
    assert_eq!(every, 40);
    // A busy control thread sweeps at 13 and then only at 22: what fell due in between goes
    // out at 22, not a period later.
    let late = export(&mut master, 13, 10).len() + export(&mut master, 22, 10).len();
    assert_eq!(late, 40, "every connection refreshed within the period");
}
