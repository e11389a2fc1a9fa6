//! Scheduler tests: priorities, dedupe, the sliding weight window, 429/418, bounds.
use super::*;

fn req(key: u64, prio: Priority, weight: u32, tx: &mpsc::Sender<RestAnswer>) -> RestRequest {
    RestRequest {
        url: format!("http://x/{key}"),
        weight,
        priority: prio,
        key,
        owner: key % 2,
        tag: key,
        reply: tx.clone(),
    }
}

fn sent_keys(s: &RestScheduler, now: Instant, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    for _ in 0..n {
        match s.next(now) {
            Next::Send(r, _) => {
                out.push(r.key);
                s.finished(true);
            }
            _ => break,
        }
    }
    out
}

#[test]
fn priorities_order_and_dedupe() {
    let (s, _rx) = RestScheduler::new(WeightLimit::UNLIMITED);
    let (tx, _r) = mpsc::channel(8);
    assert!(s.submit(req(1, Priority::Poll, 1, &tx)));
    assert!(s.submit(req(2, Priority::Sync, 1, &tx)));
    assert!(s.submit(req(3, Priority::Resync, 1, &tx)));
    // a duplicate of key 1 at higher priority promotes it; a plain duplicate is absorbed
    assert!(s.submit(req(1, Priority::Sync, 1, &tx)));
    assert!(s.submit(req(2, Priority::Sync, 1, &tx)));
    assert_eq!(s.queued(), 3);
    assert_eq!(sent_keys(&s, Instant::now(), 10), vec![3, 2, 1]);
    let c: HashMap<_, _> = s.counters().into_iter().collect();
    assert_eq!(c["rest_deduped"], 2);
    assert_eq!(c["rest_sent"], 3);
}

#[test]
fn weight_budget_holds_requests_until_the_window_slides() {
    // 100 per second, 90% usable: 9 requests of weight 10 pass, the 10th waits
    let (s, _rx) = RestScheduler::new(WeightLimit {
        limit: 100,
        window: Duration::from_secs(1),
    });
    let (tx, _r) = mpsc::channel(8);
    for k in 0..20 {
        assert!(s.submit(req(k, Priority::Sync, 10, &tx)));
    }
    let t0 = Instant::now();
    assert_eq!(sent_keys(&s, t0, 20).len(), 9);
    match s.next(t0) {
        Next::WaitUntil(t) => assert!(t > t0 && t <= t0 + Duration::from_secs(1)),
        _ => panic!("expected a budget wait"),
    }
    // a second later the window is empty again
    let t1 = t0 + Duration::from_millis(1001);
    assert_eq!(sent_keys(&s, t1, 20).len(), 9);
    assert_eq!(s.queued(), 2);
    // the venue says more was used (another client): that counts too
    let (s2, _rx2) = RestScheduler::new(WeightLimit {
        limit: 100,
        window: Duration::from_secs(60),
    });
    s2.observe_used(95);
    assert!(s2.submit(req(1, Priority::Sync, 10, &tx)));
    assert!(matches!(s2.next(Instant::now()), Next::WaitUntil(_)));
}

#[test]
fn throttle_requeues_in_front_and_pauses() {
    let (s, mut notices) = RestScheduler::new(WeightLimit::UNLIMITED);
    let (tx, _r) = mpsc::channel(8);
    s.submit(req(1, Priority::Sync, 1, &tx));
    s.submit(req(2, Priority::Sync, 1, &tx));
    let Next::Send(r, _) = s.next(Instant::now()) else {
        panic!("expected a send")
    };
    s.limited(r, 429, Some(Duration::from_secs(2)));
    s.finished(false);
    assert!(matches!(s.next(Instant::now()), Next::WaitUntil(_)));
    let later = Instant::now() + Duration::from_millis(2100);
    // the throttled request goes first once the pause is over: nothing was lost
    assert_eq!(sent_keys(&s, later, 5), vec![1, 2]);
    assert_eq!(
        notices.try_recv().ok(),
        Some(LimitNotice {
            http_status: 429,
            retry_ms: 2000
        })
    );
    // a ban without Retry-After pauses for minutes
    s.submit(req(3, Priority::Sync, 1, &tx));
    let Next::Send(r, _) = s.next(later) else {
        panic!("expected a send")
    };
    s.limited(r, 418, None);
    s.finished(false);
    let c: HashMap<_, _> = s.counters().into_iter().collect();
    assert_eq!((c["rest_throttled"], c["rest_banned"]), (1, 1));
    assert!(matches!(
        s.next(Instant::now() + Duration::from_secs(60)),
        Next::WaitUntil(_)
    ));
}

#[test]
fn in_flight_is_bounded_and_owners_cancel() {
    let (s, _rx) = RestScheduler::new(WeightLimit::UNLIMITED);
    let (tx, _r) = mpsc::channel(8);
    for k in 0..20 {
        s.submit(req(k, Priority::Sync, 1, &tx));
    }
    let now = Instant::now();
    let mut sent = 0;
    while let Next::Send(..) = s.next(now) {
        sent += 1;
    }
    assert_eq!(sent, MAX_IN_FLIGHT);
    s.cancel_owner(0);
    assert_eq!(s.queued(), (20 - MAX_IN_FLIGHT) / 2);
}
