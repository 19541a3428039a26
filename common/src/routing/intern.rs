//! Interning for the routing table: relay and gateway names, capability
//! sets, paths and sets of paths repeat across almost every record (a
//! fleet has a few relays and gateways, and all numbers homed at one relay
//! share their paths), so the table stores each value once and refers to
//! it by a `u32`. Ids are reference counted: a value whose last user let go
//! is dropped and its id reused, so a long-running relay holds only what
//! its records use.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use foldhash::fast::RandomState;

/// An id handed out by an [`Interner`].
pub type Id = u32;

/// "None" for an optional id, so an entry stays four bytes per field.
pub const NONE: Id = Id::MAX;

#[derive(Debug)]
struct Slot<T: ?Sized> {
    value: Arc<T>,
    refs: u32,
}

#[derive(Debug)]
pub struct Interner<T: ?Sized + Eq + Hash> {
    ids: HashMap<Arc<T>, Id, RandomState>,
    slots: Vec<Option<Slot<T>>>,
    free: Vec<Id>,
}

impl<T: ?Sized + Eq + Hash> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            ids: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: ?Sized + Eq + Hash> Interner<T> {
    /// The id of `value` with one more reference; `make` builds the shared
    /// copy when the value is new.
    pub fn intern_with(&mut self, value: &T, make: impl FnOnce() -> Arc<T>) -> Id {
        if let Some(&id) = self.ids.get(value) {
            self.retain(id);
            return id;
        }
        let value = make();
        let slot = Some(Slot {
            value: value.clone(),
            refs: 1,
        });
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                // More than u32::MAX - 1 distinct values would need more
                // memory than any relay has; NONE stays reserved.
                Id::try_from(self.slots.len() - 1).unwrap_or(NONE - 1)
            }
        };
        self.ids.insert(value, id);
        id
    }

    /// The id of `value`, if some record uses it (no reference taken).
    pub fn find(&self, value: &T) -> Option<Id> {
        self.ids.get(value).copied()
    }

    /// The value behind a live id.
    ///
    /// # Panics
    ///
    /// On an id that was never handed out or is released: the table only
    /// keeps ids it holds a reference to, so that is a bug in the table.
    pub fn get(&self, id: Id) -> &Arc<T> {
        match self.slots.get(id as usize) {
            Some(Some(slot)) => &slot.value,
            _ => panic!("interned id {id} is not live"),
        }
    }

    /// One more reference to a live id (`NONE` is ignored).
    pub fn retain(&mut self, id: Id) {
        if let Some(Some(slot)) = self.slots.get_mut(id as usize) {
            slot.refs += 1;
        }
    }

    /// Drops a reference (`NONE` is ignored); returns the value when that
    /// was the last one, so the caller releases what the value refers to.
    pub fn release(&mut self, id: Id) -> Option<Arc<T>> {
        let slot = self.slots.get_mut(id as usize)?.as_mut()?;
        slot.refs -= 1;
        if slot.refs > 0 {
            return None;
        }
        let slot = self.slots[id as usize].take()?;
        self.ids.remove(&*slot.value);
        self.free.push(id);
        Some(slot.value)
    }

    /// How many distinct values are live.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: &mut Interner<str>, s: &str) -> Id {
        i.intern_with(s, || Arc::from(s))
    }

    #[test]
    fn values_are_shared_counted_and_reused() {
        let mut i = Interner::<str>::default();
        let a = name(&mut i, "relay-a");
        assert_eq!(name(&mut i, "relay-a"), a);
        let b = name(&mut i, "relay-b");
        assert_ne!(a, b);
        assert_eq!(&**i.get(a), "relay-a");
        assert_eq!(i.find("relay-b"), Some(b));
        // Two references to a: the first release keeps it.
        assert_eq!(i.release(a), None);
        assert_eq!(i.find("relay-a"), Some(a));
        assert_eq!(i.release(a).as_deref(), Some("relay-a"));
        assert_eq!(i.find("relay-a"), None);
        assert_eq!(i.len(), 1);
        // The freed id is handed out again.
        assert_eq!(name(&mut i, "relay-c"), a);
        assert_eq!(i.release(NONE), None);
    }
}
