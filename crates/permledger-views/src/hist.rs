//! A value's history: the positions at which it changed and what it became. The value at position
//! `n` is the last change at or before `n`; `None` means absent (not yet created, or deleted).

use smallvec::SmallVec;

/// Changes of one value, in position order. Most values change once in their life, so the first
/// change is held inline: reading a member's standing or an assignment follows no pointer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hist<T> {
    changes: SmallVec<[(u64, Option<T>); 1]>,
}

impl<T> Default for Hist<T> {
    fn default() -> Self {
        Hist {
            changes: SmallVec::new(),
        }
    }
}

impl<T: PartialEq + Clone> Hist<T> {
    /// The value after every event up to position `n`.
    pub fn at(&self, n: u64) -> Option<&T> {
        match self.changes.last() {
            // The present, and any moment after the last change: no search.
            Some((s, v)) if *s <= n => v.as_ref(),
            _ => {
                let i = self.changes.partition_point(|(s, _)| *s <= n);
                i.checked_sub(1).and_then(|i| self.changes[i].1.as_ref())
            }
        }
    }

    /// The latest value.
    pub fn current(&self) -> Option<&T> {
        self.changes.last().and_then(|(_, v)| v.as_ref())
    }

    /// Records what the value is after position `seq`, if that is a change.
    pub fn record(&mut self, seq: u64, value: Option<&T>) {
        if self.current() != value {
            match self.changes.last_mut() {
                // Two changes at one position (several syncs for one event): the last one wins.
                Some((s, v)) if *s == seq => *v = value.cloned(),
                _ => self.changes.push((seq, value.cloned())),
            }
        }
    }
}

impl<T> Hist<T> {
    /// Every change, oldest first.
    pub fn changes(&self) -> &[(u64, Option<T>)] {
        &self.changes
    }

    /// The position of every change, oldest first.
    pub fn positions(&self) -> impl Iterator<Item = u64> + '_ {
        self.changes.iter().map(|(s, _)| *s)
    }

    /// Every value it took, oldest first (not its absences).
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.changes.iter().filter_map(|(_, v)| v.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::Hist;

    #[test]
    fn values_hold_from_their_change_to_the_next() {
        let mut h = Hist::default();
        h.record(3, Some(&"a"));
        h.record(5, Some(&"a"));
        h.record(7, None);
        h.record(9, Some(&"b"));
        assert_eq!(h.at(2), None);
        assert_eq!(h.at(3), Some(&"a"));
        assert_eq!(h.at(6), Some(&"a"));
        assert_eq!(h.at(7), None);
        assert_eq!(h.at(100), Some(&"b"));
        assert_eq!(
            h.changes().len(),
            3,
            "a record of the same value is not a change"
        );
    }
}
