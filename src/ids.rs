//! Typed ids for connections and shards.
//!
//! A connection is addressed from anywhere in the server by the shard that holds its socket,
//! its slab slot there and the slot's generation. Slots are reused once a connection is reaped,
//! so every delivery, reply or close carries the generation it was addressed to and is ignored
//! if the slot now holds a different connection. `SockRef` (a websocket) and `ReqRef` (an HTTP
//! request waiting for an answer) hold the same three fields but are different types, so a
//! reply can never be sent where a frame was meant and the other way round.

/// Index of a shard (one reactor thread) in `0..shards`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ShardId(pub u16);

impl ShardId {
    /// The shard's position in per-shard vectors (inboxes, counters).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A connection's key in its shard's slab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(pub u32);

impl Slot {
    /// The slab key.
    pub fn key(self) -> usize {
        self.0 as usize
    }

    /// The slot of a slab key (slab keys stay far below `u32::MAX`: one shard holds at most
    /// a few hundred thousand connections).
    pub fn of_key(key: usize) -> Slot {
        Slot(key as u32)
    }
}

/// Which use of a slab slot a reference was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gen(pub u32);

impl Gen {
    /// The generation after this one (wraps: 2^32 reuses of one slot apart is no risk).
    pub fn next(self) -> Gen {
        Gen(self.0.wrapping_add(1))
    }
}

/// A connection on the shard that holds the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalRef {
    /// Slab slot on the receiving shard.
    pub slot: Slot,
    /// Generation the reference was made for.
    pub gen: Gen,
}

macro_rules! conn_ref {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            /// The shard holding the socket.
            pub shard: ShardId,
            /// Its slab slot there.
            pub slot: Slot,
            /// The slot's generation when the reference was made.
            pub gen: Gen,
        }

        impl $name {
            /// A reference from its three raw parts.
            pub fn new(shard: u16, slot: u32, gen: u32) -> Self {
                $name {
                    shard: ShardId(shard),
                    slot: Slot(slot),
                    gen: Gen(gen),
                }
            }

            /// The part the holding shard needs.
            pub fn local(self) -> LocalRef {
                LocalRef {
                    slot: self.slot,
                    gen: self.gen,
                }
            }
        }
    };
}

conn_ref!(
    /// A websocket on some shard.
    SockRef
);
conn_ref!(
    /// An HTTP request parked on some shard, waiting for its answer.
    ReqRef
);
