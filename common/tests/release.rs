//! A daemon on a per-thread allocator (relayd on mimalloc): a release asked
//! for on one thread is carried out there at once, and on every other
//! thread once, as it next goes idle.

use std::sync::Mutex;
use std::thread::{self, ThreadId};

use common::daemon::memory;

static RELEASED_ON: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());

fn record() {
    RELEASED_ON
        .lock()
        .expect("not poisoned")
        .push(thread::current().id());
}

fn released_on() -> Vec<ThreadId> {
    RELEASED_ON.lock().expect("not poisoned").clone()
}

#[test]
fn a_release_reaches_each_thread_once_as_it_goes_idle() {
    memory::release_with(record);
    let here = thread::current().id();
    memory::on_thread_idle();
    assert!(released_on().is_empty(), "nothing was asked for yet");

    memory::release_free_memory();
    assert_eq!(released_on(), [here], "the asking thread releases at once");
    memory::on_thread_idle();
    assert_eq!(released_on(), [here], "once per release");

    let worker = thread::spawn(|| {
        memory::on_thread_idle();
        memory::on_thread_idle();
        thread::current().id()
    })
    .join()
    .unwrap();
    assert_eq!(
        released_on(),
        [here, worker],
        "another thread, once, when idle"
    );

    memory::release_free_memory();
    assert_eq!(released_on(), [here, worker, here], "the next release");
}
