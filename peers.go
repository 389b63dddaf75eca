package keyquorum

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

// PeerStatus is what this site knows about one other committee member:
// whether a libp2p connection to it is up now (Connected), and what the last
// exchange showed (LastSeen is when a message from the peer last arrived,
// Reachable is whether the last message to it was delivered to its stream).
// An idle peer may be up without a connection; the next message dials it.
type PeerStatus struct {
	// PeerID is the peer's party ID.
	PeerID tss.PartyID `json:"peer_id"`
	// Connected reports whether a connection to the peer is up right now.
	Connected bool `json:"connected"`
	// Addrs are the addresses the peer file gives for it.
	Addrs []string `json:"addrs"`
	// Reachable is the outcome of the last send to the peer: true when it
	// was delivered to the peer's stream, false when the transport gave up
	// on it, absent when nothing was sent yet.
	Reachable *bool `json:"reachable,omitempty"`
	// LastSeen is when the last message from the peer arrived.
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// LastError is why the last failed send to the peer failed.
	LastError string `json:"last_error,omitempty"`
	// Security describes how the latest connection with the peer was
	// secured ("quic-v1 tls X25519MLKEM768"), once there was one.
	Security string `json:"security,omitempty"`
	// PostQuantum reports whether that connection's key exchange was
	// hybrid post-quantum.
	PostQuantum bool `json:"post_quantum,omitempty"`
}

// observedNetwork is the transport as the engine sees it, plus a record of
// what was last received from and sent to each peer, for Status.
type observedNetwork struct {
	*transport.Network
	peers   []transport.Peer
	metrics *metrics // nil without metrics

	mu       sync.Mutex
	lastSeen map[tss.PartyID]time.Time
	lastSend map[tss.PartyID]error
	sent     map[tss.PartyID]bool
}

func newObservedNetwork(n *transport.Network, peers []transport.Peer, m *metrics) *observedNetwork {
	return &observedNetwork{Network: n, peers: peers, metrics: m, lastSeen: make(map[tss.PartyID]time.Time),
		lastSend: make(map[tss.PartyID]error), sent: make(map[tss.PartyID]bool)}
}

// Receive implements tss.Network.
func (o *observedNetwork) Receive(ctx context.Context) (*tss.Message, error) {
	m, err := o.Network.Receive(ctx)
	if err == nil {
		o.mu.Lock()
		o.lastSeen[m.From] = time.Now()
		o.mu.Unlock()
		o.metrics.received(m.From, len(m.Payload))
	}
	return m, err
}

// Send implements tss.Network.
func (o *observedNetwork) Send(ctx context.Context, msg *tss.Message) error {
	err := o.Network.Send(ctx, msg)
	failed := map[tss.PartyID]bool{}
	var ue *tss.UnreachableError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		for _, p := range ue.Parties {
			failed[p] = true
		}
	default:
		return err // closed network, bad message: says nothing about peers
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range msg.To {
		if p == o.Self() {
			continue
		}
		o.sent[p] = true
		if failed[p] {
			o.lastSend[p] = ue
		} else {
			o.lastSend[p] = nil
			o.metrics.sent(p, len(msg.Payload))
		}
	}
	return err
}

func (o *observedNetwork) status() []PeerStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []PeerStatus
	for _, p := range o.peers {
		id := p.PartyID()
		if id == o.Self() {
			continue
		}
		ps := PeerStatus{PeerID: id, Addrs: []string{}, Connected: o.Connected(id)}
		for _, a := range p.Addrs {
			ps.Addrs = append(ps.Addrs, a.String())
		}
		if o.sent[id] {
			ok := o.lastSend[id] == nil
			ps.Reachable = &ok
			if !ok {
				ps.LastError = o.lastSend[id].Error()
			}
		}
		if t, ok := o.lastSeen[id]; ok {
			ps.LastSeen = &t
		}
		if sec, ok := o.ConnSecurity(id); ok {
			ps.Security = sec.Transport + " " + string(sec.Protocol)
			if sec.KeyExchange != "" {
				ps.Security += " " + sec.KeyExchange
			}
			ps.PostQuantum = sec.PostQuantum
		}
		out = append(out, ps)
	}
	return out
}

// checkCommittees warns, by name, about every member of a key's committee
// that the peer file does not list: such a site can never be reached, so
// the key cannot sign with it (a mistyped peer ID in the peer file is the
// usual cause).
func (n *Node) checkCommittees(ctx context.Context) {
	listed := map[tss.PartyID]bool{n.party: true}
	for _, p := range n.cfg.Peers {
		listed[p.PartyID()] = true
	}
	keys, err := n.eng.Keys(ctx)
	if err != nil {
		n.log.Warn("could not list keys to check their committees against the peer file", "err", err.Error())
		return
	}
	for _, k := range keys {
		for _, p := range k.Parties {
			if !listed[p] {
				n.log.Warn("a member of this key's committee is not in the peer file: the key cannot sign with it; check the peer file for a mistyped peer ID",
					"key", k.ID, "missing_peer", string(p))
			}
		}
	}
}
