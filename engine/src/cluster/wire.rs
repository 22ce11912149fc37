//! The node-to-node wire format: length-prefixed frames, each one [`PeerMessage`].
//!
//! ```text
//! frame   = len u32 LE, payload (len bytes, at most FRAME_BYTES_MAX)
//! payload = kind u8, fields...
//! ```
//!
//! Integers are little-endian; byte strings and text are a `u32` length and the bytes. Raft
//! messages travel as raft-rs's protobuf encoding. Decoding checks every length against what is
//! left, so a corrupt or hostile frame is an error, never a panic or a large allocation.

use protobuf::Message as PbMessage;
use raft::prelude::Message as RaftMessage;

use crate::capacity::share::Demand;
use crate::capacity::{Access, Slot};

/// Largest frame: a 16 MB request plus its envelope.
pub const FRAME_BYTES_MAX: usize = 17 * 1024 * 1024;
/// Snapshot data travels in parts of at most this many bytes ([`PeerMessage::SnapshotPart`]).
pub const SNAPSHOT_PART_BYTES: usize = 4 * 1024 * 1024;
/// Largest snapshot a receiver reassembles; a larger one is dropped (and the sender's replica
/// stays behind, which its leader's log records).
pub const SNAPSHOT_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;

/// How a routed request is to be run by the node that receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Propose it to the group (which must be led by the receiver) and answer with the result
    /// of its application: writes and strongly consistent reads.
    Replicated,
    /// Run it on the receiver's replica of the group as it stands: eventually consistent reads.
    Local,
}

/// The answer to a routed request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The operation's JSON response.
    Ok(Vec<u8>),
    /// The operation's DynamoDB error body (`ApiError::to_json`).
    Err(Vec<u8>),
    /// The receiver does not lead the group; `leader` is the leader it knows of (0 if none).
    NotLeader {
        /// A hint for the next attempt.
        leader: u64,
    },
    /// The receiver hosts no replica of the group (yet, or any more).
    NoReplica,
}

/// One message between nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum PeerMessage {
    /// The first frame on a connection: who is calling.
    Hello {
        /// The caller's node id.
        from: u64,
    },
    /// A raft message of one group.
    Raft {
        /// The group.
        group: u64,
        /// The message.
        message: Box<RaftMessage>,
    },
    /// A routed API request.
    Request {
        /// Chosen by the caller; the response carries it back.
        id: u64,
        /// The group (partition or metadata) that owns the request.
        group: u64,
        /// How to run it.
        mode: Mode,
        /// The partition's hash range, start and end (`None` for the top), for range reads.
        range: Option<(u64, Option<u64>)>,
        /// DynamoDB operation name.
        operation: String,
        /// The JSON request body.
        body: Vec<u8>,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: u64,
        /// What happened.
        outcome: Outcome,
    },
    /// A liveness probe on an outbound link; the receiver answers [`PeerMessage::Pong`] on the
    /// same connection, so an answer proves the round trip a routed request needs.
    Ping {
        /// Chosen by the caller; echoed back.
        nonce: u64,
    },
    /// The answer to a [`PeerMessage::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// One part of a snapshot's data too large for one frame. The parts of a snapshot travel
    /// in order on one connection, then the raft message itself with its data left out; the
    /// receiver puts the data back when the parts add up to `total` bytes.
    SnapshotPart {
        /// The group.
        group: u64,
        /// The whole data's size.
        total: u64,
        /// Where in the data this part starts.
        offset: u64,
        /// The part's bytes.
        bytes: Vec<u8>,
    },
    /// What the sender's partition shares of table-wide limits were asked for over its last
    /// interval (see `capacity::share`); no answer.
    Demand {
        /// One entry per partition share that was asked for anything.
        demands: Vec<Demand>,
    },
}

/// A frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame ended before a field did.
    #[error("frame truncated reading {0}")]
    Truncated(&'static str),
    /// A tag or length is out of range.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The frame is larger than [`FRAME_BYTES_MAX`].
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
}

const KIND_HELLO: u8 = 1;
const KIND_RAFT: u8 = 2;
const KIND_REQUEST: u8 = 3;
const KIND_RESPONSE: u8 = 4;
const KIND_PING: u8 = 5;
const KIND_PONG: u8 = 6;
const KIND_SNAPSHOT_PART: u8 = 7;
const KIND_DEMAND: u8 = 8;
/// Bytes of one encoded demand: table id, access, slot, units.
const DEMAND_ENTRY_BYTES: usize = 8 + 1 + 8 + 8;

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Encodes `message` as one frame, length prefix included.
pub fn encode(message: &PeerMessage) -> Vec<u8> {
    let mut out = vec![0; 4];
    match message {
        PeerMessage::Hello { from } => {
            out.push(KIND_HELLO);
            put_u64(&mut out, *from);
        }
        PeerMessage::Raft { group, message } => {
            out.push(KIND_RAFT);
            put_u64(&mut out, *group);
            // Encoding a well-formed message into a Vec cannot fail.
            let bytes = message.write_to_bytes().unwrap_or_default();
            put_bytes(&mut out, &bytes);
        }
        PeerMessage::Request { id, group, mode, range, operation, body } => {
            out.push(KIND_REQUEST);
            put_u64(&mut out, *id);
            put_u64(&mut out, *group);
            out.push(match mode {
                Mode::Replicated => 0,
                Mode::Local => 1,
            });
            match range {
                None => out.push(0),
                Some((start, None)) => {
                    out.push(1);
                    put_u64(&mut out, *start);
                }
                Some((start, Some(end))) => {
                    out.push(2);
                    put_u64(&mut out, *start);
                    put_u64(&mut out, *end);
                }
            }
            put_bytes(&mut out, operation.as_bytes());
            put_bytes(&mut out, body);
        }
        PeerMessage::Response { id, outcome } => {
            out.push(KIND_RESPONSE);
            put_u64(&mut out, *id);
            match outcome {
                Outcome::Ok(body) => {
                    out.push(0);
                    put_bytes(&mut out, body);
                }
                Outcome::Err(body) => {
                    out.push(1);
                    put_bytes(&mut out, body);
                }
                Outcome::NotLeader { leader } => {
                    out.push(2);
                    put_u64(&mut out, *leader);
                }
                Outcome::NoReplica => out.push(3),
            }
        }
        PeerMessage::Ping { nonce } => {
            out.push(KIND_PING);
            put_u64(&mut out, *nonce);
        }
        PeerMessage::Pong { nonce } => {
            out.push(KIND_PONG);
            put_u64(&mut out, *nonce);
        }
        PeerMessage::SnapshotPart { group, total, offset, bytes } => {
            out.push(KIND_SNAPSHOT_PART);
            put_u64(&mut out, *group);
            put_u64(&mut out, *total);
            put_u64(&mut out, *offset);
            put_bytes(&mut out, bytes);
        }
        PeerMessage::Demand { demands } => {
            out.push(KIND_DEMAND);
            put_u64(&mut out, demands.len() as u64);
            for demand in demands {
                put_u64(&mut out, demand.table_id);
                out.push(match demand.access {
                    Access::Read => 0,
                    Access::Write => 1,
                });
                put_u64(&mut out, (u64::from(demand.slot.index) << 32) | u64::from(demand.slot.count));
                put_u64(&mut out, demand.units_per_s.to_bits());
            }
        }
    }
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// Reads fields from a payload, checking every length.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let bytes = self.take(8, what)?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| WireError::Truncated(what))?))
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.take(4, what)?;
        let len = u32::from_le_bytes(len.try_into().map_err(|_| WireError::Truncated(what))?) as usize;
        self.take(len, what)
    }
}

/// Decodes one frame's payload (without its length prefix).
pub fn decode(payload: &[u8]) -> Result<PeerMessage, WireError> {
    if payload.len() > FRAME_BYTES_MAX {
        return Err(WireError::TooLarge(payload.len()));
    }
    let mut r = Reader { rest: payload };
    let message = match r.u8("kind")? {
        KIND_HELLO => PeerMessage::Hello { from: r.u64("from")? },
        KIND_RAFT => {
            let group = r.u64("group")?;
            let bytes = r.bytes("raft message")?;
            let message = RaftMessage::parse_from_bytes(bytes).map_err(|_| WireError::Invalid("raft message"))?;
            PeerMessage::Raft { group, message: Box::new(message) }
        }
        KIND_REQUEST => {
            let id = r.u64("id")?;
            let group = r.u64("group")?;
            let mode = match r.u8("mode")? {
                0 => Mode::Replicated,
                1 => Mode::Local,
                _ => return Err(WireError::Invalid("mode")),
            };
            let range = match r.u8("range")? {
                0 => None,
                1 => Some((r.u64("range start")?, None)),
                2 => Some((r.u64("range start")?, Some(r.u64("range end")?))),
                _ => return Err(WireError::Invalid("range")),
            };
            let operation =
                std::str::from_utf8(r.bytes("operation")?).map_err(|_| WireError::Invalid("operation"))?.to_string();
            let body = r.bytes("body")?.to_vec();
            PeerMessage::Request { id, group, mode, range, operation, body }
        }
        KIND_RESPONSE => {
            let id = r.u64("id")?;
            let outcome = match r.u8("outcome")? {
                0 => Outcome::Ok(r.bytes("body")?.to_vec()),
                1 => Outcome::Err(r.bytes("body")?.to_vec()),
                2 => Outcome::NotLeader { leader: r.u64("leader")? },
                3 => Outcome::NoReplica,
                _ => return Err(WireError::Invalid("outcome")),
            };
            PeerMessage::Response { id, outcome }
        }
        KIND_PING => PeerMessage::Ping { nonce: r.u64("nonce")? },
        KIND_PONG => PeerMessage::Pong { nonce: r.u64("nonce")? },
        KIND_SNAPSHOT_PART => PeerMessage::SnapshotPart {
            group: r.u64("group")?,
            total: r.u64("total")?,
            offset: r.u64("offset")?,
            bytes: r.bytes("snapshot part")?.to_vec(),
        },
        KIND_DEMAND => {
            let count = r.u64("demand count")?;
            // Each entry takes 25 bytes; a count the payload cannot hold is refused before
            // anything is allocated for it.
            if count > (r.rest.len() / DEMAND_ENTRY_BYTES) as u64 {
                return Err(WireError::Truncated("demands"));
            }
            let mut demands = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let table_id = r.u64("table id")?;
                let access = match r.u8("access")? {
                    0 => Access::Read,
                    1 => Access::Write,
                    _ => return Err(WireError::Invalid("access")),
                };
                let slot = r.u64("slot")?;
                let slot = Slot { index: (slot >> 32) as u32, count: slot as u32 };
                if slot.count == 0 || slot.index >= slot.count {
                    return Err(WireError::Invalid("slot"));
                }
                let units_per_s = f64::from_bits(r.u64("units")?);
                if !units_per_s.is_finite() || units_per_s < 0.0 {
                    return Err(WireError::Invalid("units"));
                }
                demands.push(Demand { table_id, access, slot, units_per_s });
            }
            PeerMessage::Demand { demands }
        }
        _ => return Err(WireError::Invalid("kind")),
    };
    if !r.rest.is_empty() {
        return Err(WireError::Invalid("trailing bytes"));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raft_message(from: u64, to: u64, term: u64) -> RaftMessage {
        let mut m = RaftMessage { from, to, term, ..Default::default() };
        m.set_msg_type(raft::prelude::MessageType::MsgHeartbeat);
        m
    }

    fn round_trip(message: PeerMessage) {
        let frame = encode(&message);
        let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(decode(&frame[4..]).unwrap(), message);
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(PeerMessage::Hello { from: 3 });
        round_trip(PeerMessage::Raft { group: 9, message: Box::new(raft_message(1, 2, 5)) });
        for range in [None, Some((5, None)), Some((5, Some(10)))] {
            for mode in [Mode::Replicated, Mode::Local] {
                round_trip(PeerMessage::Request {
                    id: 1,
                    group: 2,
                    mode,
                    range,
                    operation: "PutItem".into(),
                    body: b"{}".to_vec(),
                });
            }
        }
        for outcome in [
            Outcome::Ok(b"{}".to_vec()),
            Outcome::Err(b"{\"__type\":\"x\"}".to_vec()),
            Outcome::NotLeader { leader: 4 },
            Outcome::NoReplica,
        ] {
            round_trip(PeerMessage::Response { id: 8, outcome });
        }
    }

    #[test]
    fn probes_round_trip() {
        round_trip(PeerMessage::Ping { nonce: 0 });
        round_trip(PeerMessage::Pong { nonce: u64::MAX });
        round_trip(PeerMessage::SnapshotPart { group: 5, total: 9, offset: 4, bytes: b"part".to_vec() });
    }

    #[test]
    fn demand_reports_round_trip_and_bad_entries_are_refused() {
        let demand = |access, index, count, units_per_s| Demand {
            table_id: 12,
            access,
            slot: Slot { index, count },
            units_per_s,
        };
        round_trip(PeerMessage::Demand { demands: vec![] });
        round_trip(PeerMessage::Demand {
            demands: vec![demand(Access::Read, 0, 1, 0.0), demand(Access::Write, 63, 64, 2_999.5)],
        });
        for bad in [demand(Access::Read, 4, 4, 1.0), demand(Access::Read, 0, 0, 1.0), demand(Access::Read, 0, 2, -1.0)]
        {
            let frame = encode(&PeerMessage::Demand { demands: vec![bad] });
            assert!(decode(&frame[4..]).is_err());
        }
        let mut huge = vec![KIND_DEMAND];
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode(&huge), Err(WireError::Truncated(_))));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn requests_round_trip(id: u64, group: u64, local: bool, op in "[A-Za-z]{0,20}",
                               body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mode = if local { Mode::Local } else { Mode::Replicated };
            round_trip(PeerMessage::Request { id, group, mode, range: None, operation: op, body });
        }

        #[test]
        fn truncated_frames_are_errors(cut in 0usize..40) {
            let frame = encode(&PeerMessage::Request {
                id: 1, group: 2, mode: Mode::Replicated, range: Some((1, Some(2))),
                operation: "GetItem".into(), body: b"{\"a\":1}".to_vec(),
            });
            let payload = &frame[4..];
            prop_assume!(cut < payload.len());
            prop_assert!(decode(&payload[..cut]).is_err());
        }
    }
}
