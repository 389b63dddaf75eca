// Package transport carries keyquorum's protocol messages between sites over
// libp2p. [Network] implements [tss.Network]; package
// [github.com/keyquorum/keyquorum/transport/memnet] is the in-memory
// implementation for tests, and internal/nettest holds the conformance suite
// both pass.
//
// # Identity
//
// A party's libp2p identity is its HSM-resident P-256 key (hsmshare's
// identity, or any [crypto.Signer] with an ECDSA P-256 public key). [SignerKey]
// adapts it to libp2p's private-key interface: every signature is made by
// the signer, and Raw, the only method that would expose private bytes,
// returns [ErrKeyNotExportable]. The party ID ([tss.PartyID]) is the string
// form of the peer ID derived from the public key ([PartyIDFromPublicKey]).
// With TLS the token signs once per start (the libp2p certificate
// extension); with Noise it signs on every handshake, a responder before it
// knows who connects, which is why Noise is offered only when
// [Config.Security] asks for it.
//
// # What a connection guarantees
//
//   - Only committee members get in. The connection gater admits a
//     connection only when the peer ID authenticated by the security
//     handshake is one of Config.Peers; anyone else is disconnected before
//     the stream multiplexer runs, so no protocol stream can open.
//   - TLS 1.3 protects every connection (Noise too when Config.Security
//     lists it); QUIC always uses TLS 1.3. With Go 1.26 two keyquorum
//     parties negotiate the hybrid post-quantum key exchange X25519MLKEM768
//     over TLS and QUIC (checked by TestKeyExchange_PostQuantumByDefault);
//     Noise uses X25519 only.
//     [Network.ConnSecurity] reports what a connection negotiated, and
//     Config.RequirePostQuantum refuses classical key exchanges.
//   - The receiver sets Message.From to the authenticated peer; an envelope
//     whose From field names anyone else is dropped and counted.
//
// # Messages
//
// Messages travel as length-delimited protobuf envelopes under protocol
// /keyquorum/tss/1.0.0 (FORMAT.md), at most [tss.MaxPayloadSize] of payload.
// Each party keeps one outbound stream per peer for all sessions and
// reopens it with bounded exponential backoff when it fails. Queues are
// bounded: a full per-peer send queue blocks Send, and each peer has its
// own part of the inbox, which stops reading from that peer only when full,
// so a slow receiver slows its senders down instead of growing memory and a
// peer that floods waits alone while Receive serves the others in turn.
// Every write has a deadline ([Config.WriteTimeout]): a peer that stops
// reading has its stream reset instead of blocking its link for good.
// Oversized or malformed envelopes are dropped, counted and their stream
// reset.
//
// Send returns once the envelope is written to each recipient's stream.
// That is not an acknowledgement: a message can be lost if a peer crashes
// or restarts, and delivery is at most once. The tss session layer's round
// timeouts turn a lost message into an error naming the silent party.
//
// # Reliable broadcast
//
// The transport delivers each message as sent and does not itself
// implement reliable broadcast. The tss session layer does: recipients of a
// broadcast message exchange its hash in [tss.MsgEcho] messages over this same
// Network and use the message only when every echo agrees, so a sender that
// sends different payloads to different peers is detected and named.
package transport
