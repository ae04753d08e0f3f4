//! Values made when first used: an org restored from a checkpoint is decoded when a command,
//! an event or a question first needs it, so that an open costs the tail of the log rather
//! than every org the ledger holds (docs/decisions/0010-checkpoints.md).
//!
//! A `Lazy` is either a value or a way to make it. Making it is deterministic (the same bytes
//! and events give the same value), so two copies that each make their own hold the same, and
//! a value made apart from a `Lazy` can be offered to it (`offer`) with no change of meaning.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

use crate::state::Hashed;

/// A way to make a value, and how much work it is (for sharing loads out among cores).
pub struct Loader<T> {
    make: Arc<dyn Fn() -> T + Send + Sync>,
    weight: u64,
}

impl<T> Clone for Loader<T> {
    fn clone(&self) -> Self {
        Loader {
            make: self.make.clone(),
            weight: self.weight,
        }
    }
}

impl<T> Loader<T> {
    pub fn new(weight: u64, make: impl Fn() -> T + Send + Sync + 'static) -> Loader<T> {
        Loader {
            make: Arc::new(make),
            weight,
        }
    }

    /// Makes the value (again: a loader may be run by several copies).
    pub fn make(&self) -> T {
        (self.make)()
    }

    pub fn weight(&self) -> u64 {
        self.weight
    }
}

/// A value, made from its loader the first time it is used.
pub struct Lazy<T> {
    value: OnceLock<T>,
    /// Dropped once the value is made, so that what it holds (a checkpoint's file) goes when
    /// every value it could make has been made.
    loader: Mutex<Option<Loader<T>>>,
}

impl<T> Lazy<T> {
    pub fn ready(value: T) -> Lazy<T> {
        Lazy {
            value: OnceLock::from(value),
            loader: Mutex::new(None),
        }
    }

    pub fn later(loader: Loader<T>) -> Lazy<T> {
        Lazy {
            value: OnceLock::new(),
            loader: Mutex::new(Some(loader)),
        }
    }

    /// The value, made now if it was not yet (a second caller meanwhile waits for it).
    pub fn get(&self) -> &T {
        if let Some(v) = self.value.get() {
            return v;
        }
        let v = self.value.get_or_init(|| match self.loader() {
            Some(l) => l.make(),
            // A `Lazy` is made with a value or a loader, and the loader goes only once the
            // value is made.
            None => unreachable!("a lazy value with neither value nor loader"),
        });
        self.lock().take();
        v
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.get();
        match self.value.get_mut() {
            Some(v) => v,
            None => unreachable!("made just above"),
        }
    }

    pub fn into_inner(self) -> T {
        self.get();
        match self.value.into_inner() {
            Some(v) => v,
            None => unreachable!("made just above"),
        }
    }

    /// The value, if it has been made.
    pub fn made(&self) -> Option<&T> {
        self.value.get()
    }

    /// The loader, while the value is not made.
    pub fn loader(&self) -> Option<Loader<T>> {
        if self.value.get().is_some() {
            return None;
        }
        self.lock().clone()
    }

    /// Offers a value made apart from its loader (by a thread that warms values without
    /// holding what they live in): taken if none is made yet, given back otherwise.
    pub fn offer(&self, value: T) -> Result<(), T> {
        self.value.set(value)?;
        self.lock().take();
        Ok(())
    }

    /// How much work making or copying it is.
    pub fn weight(&self, made: impl Fn(&T) -> u64) -> u64 {
        match self.value.get() {
            Some(v) => made(v),
            None => self.lock().as_ref().map_or(0, Loader::weight),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Loader<T>>> {
        // Nothing runs under this lock that can panic: a poisoned one still holds its loader.
        self.loader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<T: Clone> Clone for Lazy<T> {
    /// A made value is copied; one not yet made stays to be made, by the copy's own loader.
    fn clone(&self) -> Self {
        match self.value.get() {
            Some(v) => Lazy::ready(v.clone()),
            None => match self.lock().clone() {
                Some(l) => Lazy::later(l),
                // Made meanwhile by another thread.
                None => Lazy::ready(self.get().clone()),
            },
        }
    }
}

impl<T: PartialEq> PartialEq for Lazy<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for Lazy<T> {}

impl<T: fmt::Debug> fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value.get() {
            Some(v) => v.fmt(f),
            None => f.write_str("<not yet made>"),
        }
    }
}

/// A hashed map whose values are made when first used: the map answers as if every value were
/// made, making each one it hands out.
pub struct LazyMap<K, V>(Hashed<K, Lazy<V>>);

impl<K, V> Default for LazyMap<K, V> {
    fn default() -> Self {
        LazyMap(Hashed::default())
    }
}

impl<K: Eq + Hash, V> LazyMap<K, V> {
    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(k).map(Lazy::get)
    }

    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get_mut(k).map(Lazy::get_mut)
    }

    /// The entry itself, made or not.
    pub fn slot<Q>(&self, k: &Q) -> Option<&Lazy<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(k)
    }

    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.contains_key(k)
    }

    pub fn insert(&mut self, k: K, v: V) {
        self.0.insert(k, Lazy::ready(v));
    }

    pub fn insert_later(&mut self, k: K, loader: Loader<V>) {
        self.0.insert(k, Lazy::later(loader));
    }

    pub fn insert_lazy(&mut self, k: K, v: Lazy<V>) {
        self.0.insert(k, v);
    }

    pub fn reserve(&mut self, n: usize) {
        self.0.reserve(n);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.keys()
    }

    /// Every entry, making each value as it is reached.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v.get()))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.values().map(Lazy::get)
    }

    /// Every entry as it is, made or not.
    pub fn slots(&self) -> impl Iterator<Item = (&K, &Lazy<V>)> {
        self.0.iter()
    }

    /// How many values are not made yet.
    pub fn pending(&self) -> usize {
        self.0.values().filter(|v| v.made().is_none()).count()
    }
}

impl<K: Clone, V: Clone> Clone for LazyMap<K, V> {
    fn clone(&self) -> Self {
        LazyMap(self.0.clone())
    }
}

impl<K: Eq + Hash, V: PartialEq> PartialEq for LazyMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Eq + Hash, V: Eq> Eq for LazyMap<K, V> {}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for LazyMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl<K: Eq + Hash, V> FromIterator<(K, V)> for LazyMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        LazyMap(iter.into_iter().map(|(k, v)| (k, Lazy::ready(v))).collect())
    }
}

impl<K: Eq + Hash, V> FromIterator<(K, Lazy<V>)> for LazyMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, Lazy<V>)>>(iter: I) -> Self {
        LazyMap(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn counted() -> (Arc<AtomicU32>, Loader<String>) {
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let loader = Loader::new(7, move || {
            r.fetch_add(1, Ordering::SeqCst);
            "made".to_string()
        });
        (runs, loader)
    }

    #[test]
    fn a_value_is_made_once_on_first_use_and_its_loader_let_go() {
        let (runs, loader) = counted();
        let lazy = Lazy::later(loader);
        assert_eq!(lazy.made(), None);
        assert_eq!(lazy.weight(|_| 0), 7);
        assert_eq!(lazy.get(), "made");
        assert_eq!(lazy.get(), "made");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(lazy.loader().is_none());
        assert_eq!(lazy.weight(|v| v.len() as u64), 4);
    }

    #[test]
    fn a_copy_not_yet_made_makes_its_own_and_an_offer_is_taken_only_before() {
        let (runs, loader) = counted();
        let lazy = Lazy::later(loader);
        let mut copy = lazy.clone();
        copy.get_mut().push('!');
        assert_eq!(lazy.offer("offered".into()), Ok(()));
        assert_eq!(lazy.get(), "offered");
        assert_eq!(lazy.offer("late".into()), Err("late".into()));
        assert_eq!(copy.get(), "made!");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_map_answers_as_if_every_value_were_made() {
        let (_, loader) = counted();
        let mut map: LazyMap<u32, String> = [(1, "one".to_string())].into_iter().collect();
        map.insert_later(2, loader);
        assert_eq!(map.pending(), 1);
        let mut eager: LazyMap<u32, String> = LazyMap::default();
        eager.insert(1, "one".into());
        eager.insert(2, "made".into());
        assert_eq!(map, eager);
        assert_eq!(map.pending(), 0);
        assert_eq!(map.get(&2).map(String::as_str), Some("made"));
    }
}
