//! What each guest listener turned out to be (`vm ports`): a listener is
//! probed for HTTPS and HTTP once, and the answer kept for as long as the
//! same process listens there, so a TUI refreshing every two seconds does
//! not knock on guest servers again.

use std::collections::HashMap;
use std::sync::Mutex;

/// A listener: VM id, protocol, port and the listening process.
pub type ListenerKey = (String, String, u16, Option<u32>);

/// Web classification of listeners already probed (`None`: not web).
#[derive(Default)]
pub struct ProbeCache(Mutex<HashMap<ListenerKey, Option<String>>>);

impl ProbeCache {
    pub fn get(&self, key: &ListenerKey) -> Option<Option<String>> {
        self.lock().get(key).cloned()
    }

    /// Records this call's answers and forgets the VM's listeners that are gone.
    pub fn replace(&self, vm_id: &str, found: Vec<(ListenerKey, Option<String>)>) {
        let mut map = self.lock();
        map.retain(|key, _| key.0 != vm_id);
        map.extend(found);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ListenerKey, Option<String>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_a_vms_current_listeners_only() {
        let cache = ProbeCache::default();
        let key = |vm: &str, port| (vm.to_string(), "tcp".to_string(), port, Some(7));
        cache.replace(
            "a",
            vec![(key("a", 80), Some("http".into())), (key("a", 81), None)],
        );
        cache.replace("b", vec![(key("b", 80), None)]);
        assert_eq!(cache.get(&key("a", 80)), Some(Some("http".into())));
        assert_eq!(cache.get(&key("a", 81)), Some(None), "known: not web");
        // a's 81 is gone: forgotten; b is untouched.
        cache.replace("a", vec![(key("a", 80), Some("http".into()))]);
        assert_eq!(cache.get(&key("a", 81)), None);
        assert_eq!(cache.get(&key("b", 80)), Some(None));
    }
}
