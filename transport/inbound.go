package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
)

// handleStream reads envelopes from one inbound stream until it ends. It
// runs in a goroutine libp2p starts per stream; the network counts it in
// its WaitGroup so that Close waits for it.
func (n *Network) handleStream(s network.Stream) {
	remote := s.Conn().RemotePeer()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		s.Reset()
		return
	}
	if !n.inCommittee(remote) {
		// The gater refuses such connections; this is a second line.
		n.mu.Unlock()
		n.stats.connsRefused.Add(1)
		s.Reset()
		return
	}
	if n.inbound[remote] >= n.cfg.MaxInboundStreams {
		n.mu.Unlock()
		n.stats.streamsRefused.Add(1)
		n.log.Warn("refused stream: peer holds too many", "peer", remote.String(), "limit", n.cfg.MaxInboundStreams)
		s.Reset()
		return
	}
	n.inbound[remote]++
	n.wg.Add(1)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.inbound[remote]--
		n.mu.Unlock()
		n.wg.Done()
	}()
	// Close must not wait for a peer that stops writing.
	stop := context.AfterFunc(n.ctx, func() { s.Reset() })
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			n.recovered("stream from "+remote.String(), r)
			s.Reset()
		}
	}()

	from := PartyIDFromPeer(remote)
	r := bufio.NewReaderSize(s, 32<<10)
	for {
		frame, err := readFrame(r)
		if err != nil {
			switch {
			case errors.Is(err, ErrEnvelopeTooLarge):
				n.dropStream(s, DropOversized, err)
			case errors.Is(err, ErrMalformedEnvelope):
				n.dropStream(s, DropMalformed, err)
			case errors.Is(err, io.EOF):
				s.Close()
			default:
				n.log.Debug("inbound stream ended", "peer", remote.String(), "err", err)
				s.Reset()
			}
			return
		}
		msg, err := decodeEnvelope(frame)
		if err != nil {
			reason := DropMalformed
			if errors.Is(err, ErrEnvelopeTooLarge) {
				reason = DropOversized
			}
			n.dropStream(s, reason, err)
			return
		}
		if msg.From != from {
			n.stats.drop(DropSpoofedSender)
			n.log.Warn("dropped envelope whose sender differs from the authenticated peer",
				"peer", remote.String(), "claimed_from", string(msg.From), "session", msg.Session.Short())
			continue
		}
		if !slices.Contains(msg.To, n.selfParty) {
			n.stats.drop(DropMisaddressed)
			n.log.Warn("dropped envelope not addressed to this party", "peer", remote.String(), "session", msg.Session.Short())
			continue
		}
		if err := n.pushInbox(n.ctx, remote, msg, int64(len(frame))); err != nil {
			s.Reset()
			return
		}
		n.stats.received.Add(1)
	}
}

// dropStream counts a bad envelope and resets the stream it came on: after
// a framing or parsing error nothing later on the stream can be trusted.
func (n *Network) dropStream(s network.Stream, reason DropReason, err error) {
	n.stats.drop(reason)
	n.log.Warn("dropped envelope and reset stream", "peer", s.Conn().RemotePeer().String(),
		"reason", string(reason), "err", err)
	s.Reset()
}
