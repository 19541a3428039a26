//! A link's outbox: the control messages other tasks queue for the link's
//! actor to send. Bounded, first in first out, with two ways in: `send`
//! waits for room, `try_send` says "full" at once (the actor's overflow
//! policy is built on the two, see [`super::actor`]).
//!
//! Written here rather than taken from a crate because every link has one
//! and a relay holds 10,000 idle links, so what an empty outbox holds
//! counts. tokio's `mpsc` allocates its first block of 32 slots and its
//! cache-padded counters when it is made: 800 bytes per link (heaptrack,
//! `--bench scale -- links`). futures' bounded channel gives every sender
//! a slot of its own beyond the bound, so `try_send` through a cloned
//! handle would not see the outbox full; flume's `recv_async` can lose a
//! wake-up when a `select!` drops it (zesterer/flume#104); async-channel
//! allocates its whole capacity up front. This one is a queue under a
//! lock, a semaphore counting the free slots and a `Notify` for the
//! reader: about 150 bytes, and the queue holds memory only while
//! messages wait in it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore, TryAcquireError};

use super::message::Control;

/// Makes an outbox that holds `capacity` messages (at least one).
pub(crate) fn bounded(capacity: usize) -> (Sender, Mailbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            messages: VecDeque::new(),
            senders: 1,
            closed: false,
        }),
        arrived: Notify::new(),
        room: Semaphore::new(capacity.max(1)),
    });
    (Sender(shared.clone()), Mailbox(shared))
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the mailbox: a message came, or the last sender went. A
    /// `notify_one` with no one waiting is kept for the next wait, so a
    /// message queued between the mailbox's look and its wait still wakes it.
    arrived: Notify,
    /// One permit per free slot. Closed when the mailbox goes, which wakes
    /// the senders waiting for room.
    room: Semaphore,
}

struct Queue {
    messages: VecDeque<Box<Control>>,
    senders: usize,
    /// The mailbox is gone: nothing will read what is queued.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while the lock was held left the queue whole: every
        // change under it is a single push, pop or assignment.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The mailbox is gone (the link's actor ended).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed;

/// Why [`Sender::try_send`] did not queue the message.
#[derive(Debug)]
pub(crate) enum TrySendError {
    /// The outbox holds `capacity` messages; here is the one that did not fit.
    Full(Box<Control>),
    Closed,
}

/// The way into an outbox; cloned for each task that queues messages.
pub(crate) struct Sender(Arc<Shared>);

impl Sender {
    /// Queues `msg` once there is room.
    pub(crate) async fn send(&self, msg: Box<Control>) -> Result<(), Closed> {
        let room = self.0.room.acquire().await.map_err(|_| Closed)?;
        // The slot is given back when the mailbox takes the message.
        room.forget();
        self.push(msg)
    }

    /// Queues `msg` if there is room now.
    pub(crate) fn try_send(&self, msg: Box<Control>) -> Result<(), TrySendError> {
        match self.0.room.try_acquire() {
            Ok(room) => {
                room.forget();
                self.push(msg).map_err(|Closed| TrySendError::Closed)
            }
            Err(TryAcquireError::NoPermits) => Err(TrySendError::Full(msg)),
            Err(TryAcquireError::Closed) => Err(TrySendError::Closed),
        }
    }

    fn push(&self, msg: Box<Control>) -> Result<(), Closed> {
        let mut queue = self.0.lock();
        if queue.closed {
            return Err(Closed);
        }
        queue.messages.push_back(msg);
        drop(queue);
        self.0.arrived.notify_one();
        Ok(())
    }
}

impl Clone for Sender {
    fn clone(&self) -> Sender {
        self.0.lock().senders += 1;
        Sender(self.0.clone())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        queue.senders -= 1;
        let last = queue.senders == 0;
        drop(queue);
        if last {
            self.0.arrived.notify_one();
        }
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("outbox::Sender")
    }
}

/// The control messages waiting to go out on one link: what the link's
/// actor reads.
pub struct Mailbox(Arc<Shared>);

impl Mailbox {
    /// The next queued message (what the actor does; tests read it too).
    /// `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Control> {
        self.recv_boxed().await.map(|msg| *msg)
    }

    /// The next queued message, still boxed. Cancel safe: a message is
    /// taken from the queue only in the poll that returns it.
    pub(crate) async fn recv_boxed(&mut self) -> Option<Box<Control>> {
        loop {
            {
                let mut queue = self.0.lock();
                if let Some(msg) = queue.messages.pop_front() {
                    if queue.messages.is_empty() {
                        // An idle link holds no queue.
                        queue.messages = VecDeque::new();
                    }
                    drop(queue);
                    self.0.room.add_permits(1);
                    return Some(msg);
                }
                if queue.senders == 0 {
                    return None;
                }
            }
            self.0.arrived.notified().await;
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        queue.closed = true;
        queue.messages = VecDeque::new();
        drop(queue);
        self.0.room.close();
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailbox")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn ping(seq: u64) -> Box<Control> {
        Box::new(Control::Ping { seq })
    }

    fn seq(msg: Option<Control>) -> u64 {
        match msg {
            Some(Control::Ping { seq }) => seq,
            other => panic!("not a ping: {other:?}"),
        }
    }

    #[tokio::test]
    async fn messages_come_out_in_order_and_a_full_outbox_says_so_until_one_is_taken() {
        let (tx, mut rx) = bounded(3);
        let other = tx.clone();
        for i in 0..3 {
            tx.try_send(ping(i)).unwrap();
        }
        // Full for every sender, not only the one that filled it.
        match other.try_send(ping(3)) {
            Err(TrySendError::Full(msg)) => assert_eq!(*msg, Control::Ping { seq: 3 }),
            other => panic!("{other:?}"),
        }
        assert_eq!(seq(rx.recv().await), 0);
        other.try_send(ping(3)).unwrap();
        assert!(matches!(tx.try_send(ping(4)), Err(TrySendError::Full(_))));
        for i in 1..4 {
            assert_eq!(seq(rx.recv().await), i);
        }
    }

    #[tokio::test]
    async fn a_sender_that_waits_gets_room_when_the_mailbox_takes_a_message() {
        let (tx, mut rx) = bounded(1);
        tx.send(ping(0)).await.unwrap();
        let mut waiting = Box::pin(tx.send(ping(1)));
        assert!((&mut waiting).now_or_never().is_none(), "no room yet");
        assert_eq!(seq(rx.recv().await), 0);
        waiting.await.unwrap();
        assert_eq!(seq(rx.recv().await), 1);
    }

    #[tokio::test]
    async fn when_the_mailbox_goes_senders_hear_it_and_waiting_ones_are_woken() {
        let (tx, rx) = bounded(1);
        tx.send(ping(0)).await.unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(ping(1)).await }
        });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(Closed));
        assert!(matches!(tx.try_send(ping(2)), Err(TrySendError::Closed)));
        assert_eq!(tx.send(ping(3)).await, Err(Closed));
    }

    #[tokio::test]
    async fn the_mailbox_ends_after_the_last_sender_once_the_queue_is_empty() {
        let (tx, mut rx) = bounded(4);
        let other = tx.clone();
        tx.try_send(ping(0)).unwrap();
        drop(tx);
        let reading = tokio::spawn(async move {
            let first = seq(rx.recv().await);
            (first, rx.recv().await)
        });
        tokio::task::yield_now().await;
        drop(other);
        let (first, end) = reading.await.unwrap();
        assert_eq!(first, 0);
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn a_dropped_wait_loses_no_message_and_no_wake_up() {
        let (tx, mut rx) = bounded(4);
        // A wait that a select! drops after the sender woke it.
        {
            let mut wait = Box::pin(rx.recv_boxed());
            assert!((&mut wait).now_or_never().is_none());
            tx.try_send(ping(0)).unwrap();
        }
        assert_eq!(seq(rx.recv().await), 0);
        // And one woken while nobody waits: the next wait still ends.
        let reading = tokio::spawn(async move { seq(rx.recv().await) });
        tokio::task::yield_now().await;
        tx.try_send(ping(1)).unwrap();
        assert_eq!(reading.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn an_empty_outbox_holds_no_queue() {
        let (tx, mut rx) = bounded(64);
        for i in 0..40 {
            tx.try_send(ping(i)).unwrap();
        }
        assert!(rx.0.lock().messages.capacity() >= 40);
        for i in 0..40 {
            assert_eq!(seq(rx.recv().await), i);
        }
        assert_eq!(rx.0.lock().messages.capacity(), 0);
        // And every slot is free again.
        for i in 0..64 {
            tx.try_send(ping(i)).unwrap();
        }
        assert!(matches!(tx.try_send(ping(64)), Err(TrySendError::Full(_))));
    }
}
