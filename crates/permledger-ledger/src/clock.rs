//! Where the engine's "now" comes from: the system clock in production, a hand-set one in
//! scenarios and tests. The engine never lets recorded time go back, whatever the clock says.

use std::sync::Mutex;

use permledger_domain::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The machine's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_chrono(chrono::Utc::now())
    }
}

/// A clock that shows what it was last set to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(t: Timestamp) -> Self {
        ManualClock(Mutex::new(t))
    }
    pub fn set(&self, t: Timestamp) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0
            .lock()
            .map(|g| *g)
            .unwrap_or(Timestamp::from_micros(0))
    }
}
