//! Stream names (topics) of a simulator and their subscriber counts: a frame of a topic
//! nobody listens to is never serialised. Topic ids are indexes into the name list.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// Stream names and their subscriber counts; a topic nobody listens to is never serialised.
#[derive(Debug)]
pub(crate) struct Topics {
    names: Vec<String>,
    by_name: HashMap<String, u32>,
    subs: Vec<AtomicU32>,
    /// Sum of `subs`: lets the unbounded feed idle when nobody wants any data.
    total: AtomicU32,
}

impl Topics {
    pub(crate) fn new(names: Vec<String>) -> Topics {
        let by_name = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((n.clone(), u32::try_from(i).ok()?)))
            .collect();
        let subs = names.iter().map(|_| AtomicU32::new(0)).collect();
        Topics {
            names,
            by_name,
            subs,
            total: AtomicU32::new(0),
        }
    }

    /// Topic of a stream name, `None` for valid names that never carry data here.
    pub(crate) fn lookup(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn count(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn name(&self, topic: u32) -> &str {
        self.names.get(topic as usize).map_or("", String::as_str)
    }

    pub(crate) fn listened(&self, topic: u32) -> bool {
        self.subs
            .get(topic as usize)
            .is_some_and(|c| c.load(Ordering::Relaxed) > 0)
    }

    /// True when at least one connection subscribed to a topic that carries data.
    pub(crate) fn any_listened(&self) -> bool {
        self.total.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn add(&self, topic: u32) {
        if let Some(c) = self.subs.get(topic as usize) {
            c.fetch_add(1, Ordering::Relaxed);
            self.total.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn remove(&self, topic: u32) {
        let dec = |v: u32| v.checked_sub(1);
        if let Some(c) = self.subs.get(topic as usize) {
            if c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, dec)
                .is_ok()
            {
                let _ = self
                    .total
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, dec);
            }
        }
    }
}
