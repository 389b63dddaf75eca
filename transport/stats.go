package transport

import "sync/atomic"

// DropReason says why a received envelope was dropped.
type DropReason string

// Reasons for dropping a received envelope.
const (
	// DropOversized: the frame or payload was over the size limits. The
	// stream was reset.
	DropOversized DropReason = "oversized"
	// DropMalformed: the envelope did not parse as FORMAT.md specifies. The
	// stream was reset.
	DropMalformed DropReason = "malformed"
	// DropSpoofedSender: the envelope's From differed from the peer the
	// connection authenticated.
	DropSpoofedSender DropReason = "spoofed_sender"
	// DropMisaddressed: this party was not among the envelope's
	// recipients.
	DropMisaddressed DropReason = "misaddressed"
)

// Stats is a snapshot of a [Network]'s counters since [New].
type Stats struct {
	// MessagesSent counts envelopes written to peers' streams, one per
	// recipient (messages a party sends to itself are not counted).
	MessagesSent uint64
	// MessagesReceived counts messages put in the inbox from peers.
	MessagesReceived uint64
	// Dropped counts received envelopes dropped, by reason.
	Dropped map[DropReason]uint64
	// StreamsRefused counts inbound streams reset because a peer already
	// held MaxInboundStreams of them.
	StreamsRefused uint64
	// ConnectionsRefused counts connections the gater refused after the
	// security handshake: the remote peer was not in the committee, or
	// RequirePostQuantum was set and the key exchange was classical.
	ConnectionsRefused uint64
	// DialFailures counts failed attempts to reach a peer.
	DialFailures uint64
	// Reconnects counts outbound streams opened to replace one that failed.
	Reconnects uint64
	// StalledWrites counts envelopes given up at their write deadline
	// because the peer did not read; the stream was reset each time.
	StalledWrites uint64
	// Panics counts panics recovered in the network's goroutines; any
	// non-zero value is a bug worth reporting.
	Panics uint64
}

type counters struct {
	sent, received                     atomic.Uint64
	oversized, malformed, spoofed, mis atomic.Uint64
	streamsRefused, connsRefused       atomic.Uint64
	dialFailures, reconnects, panics   atomic.Uint64
	stalledWrites                      atomic.Uint64
}

func (c *counters) drop(r DropReason) {
	switch r {
	case DropOversized:
		c.oversized.Add(1)
	case DropMalformed:
		c.malformed.Add(1)
	case DropSpoofedSender:
		c.spoofed.Add(1)
	case DropMisaddressed:
		c.mis.Add(1)
	}
}

func (c *counters) snapshot() Stats {
	return Stats{
		MessagesSent:     c.sent.Load(),
		MessagesReceived: c.received.Load(),
		Dropped: map[DropReason]uint64{
			DropOversized:     c.oversized.Load(),
			DropMalformed:     c.malformed.Load(),
			DropSpoofedSender: c.spoofed.Load(),
			DropMisaddressed:  c.mis.Load(),
		},
		StreamsRefused:     c.streamsRefused.Load(),
		ConnectionsRefused: c.connsRefused.Load(),
		DialFailures:       c.dialFailures.Load(),
		Reconnects:         c.reconnects.Load(),
		StalledWrites:      c.stalledWrites.Load(),
		Panics:             c.panics.Load(),
	}
}
