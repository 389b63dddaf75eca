package keyquorum

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/keyquorum/keyquorum/offline"
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
	// Bundles reports that the peer is reached through bundle files
	// (Config.BundlePeers), not libp2p: it is never Connected, and
	// LastSeen is when its last imported bundle's messages arrived.
	Bundles bool `json:"bundles,omitempty"`
	// Pending, for a bundle peer, is the number of messages waiting to be
	// exported to it (Node.ExportBundle).
	Pending int `json:"pending,omitempty"`
}

// observedNetwork is the site's network as the engine sees it: the libp2p
// transport (nil when no other site is reached over libp2p), the bundle
// files of package offline (nil without Config.BundlePeers), or both, with
// each message routed to the one that reaches its recipient; plus a record
// of what was last received from and sent to each peer, for Status.
type observedNetwork struct {
	tn      *transport.Network // nil: no libp2p peers
	files   *offline.Network   // nil: no bundle peers
	viaFile map[tss.PartyID]bool
	self    tss.PartyID
	peers   []transport.Peer
	metrics *metrics // nil without metrics

	// in merges what both networks receive when there are two; nil when
	// the engine receives from the one network directly.
	in chan *tss.Message

	mu       sync.Mutex
	lastSeen map[tss.PartyID]time.Time
	lastSend map[tss.PartyID]error
	sent     map[tss.PartyID]bool
}

func newObservedNetwork(self tss.PartyID, tn *transport.Network, files *offline.Network, peers []transport.Peer, m *metrics) *observedNetwork {
	o := &observedNetwork{tn: tn, files: files, self: self, peers: peers, metrics: m, lastSeen: make(map[tss.PartyID]time.Time),
		lastSend: make(map[tss.PartyID]error), sent: make(map[tss.PartyID]bool)}
	if tn != nil && files != nil {
		o.in = make(chan *tss.Message, 256)
	}
	if files != nil {
		o.viaFile = map[tss.PartyID]bool{}
		for _, p := range files.Peers() {
			o.viaFile[p] = true
		}
	}
	return o
}

// Self implements tss.Network.
func (o *observedNetwork) Self() tss.PartyID { return o.self }

// merge moves what both networks receive into o.in until ctx ends; Open
// runs it, for each network, only when there are two.
func (o *observedNetwork) merge(ctx context.Context, from tss.Network) {
	for {
		m, err := from.Receive(ctx)
		if err != nil {
			return // closed, or ctx done: the engine stops with ctx too
		}
		select {
		case o.in <- m:
		case <-ctx.Done():
			return
		}
	}
}

// receive returns the next message from whichever network has one.
func (o *observedNetwork) receive(ctx context.Context) (*tss.Message, error) {
	switch {
	case o.in != nil:
		select {
		case m := <-o.in:
			return m, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case o.tn != nil:
		return o.tn.Receive(ctx)
	default:
		return o.files.Receive(ctx)
	}
}

// Receive implements tss.Network.
func (o *observedNetwork) Receive(ctx context.Context) (*tss.Message, error) {
	m, err := o.receive(ctx)
	if err == nil {
		o.mu.Lock()
		o.lastSeen[m.From] = time.Now()
		o.mu.Unlock()
		o.metrics.received(m.From, len(m.Payload))
	}
	return m, err
}

// byFiles reports whether p is reached through bundle files.
func (o *observedNetwork) byFiles(p tss.PartyID) bool {
	return p != o.self && o.viaFile[p]
}

// send hands msg to the network of each recipient: bundle peers get it
// through the offline network, everyone else (this site included, when
// there is a libp2p transport) through the transport. A recipient that
// neither reaches is reported as unreachable.
func (o *observedNetwork) send(ctx context.Context, msg *tss.Message) error {
	if o.files == nil {
		return o.tn.Send(ctx, msg)
	}
	if o.tn == nil {
		return o.files.Send(ctx, msg)
	}
	var viaFiles, viaNet []tss.PartyID
	for _, p := range msg.To {
		if o.byFiles(p) {
			viaFiles = append(viaFiles, p)
		} else {
			viaNet = append(viaNet, p)
		}
	}
	var errs []error
	for _, part := range []struct {
		to  []tss.PartyID
		net tss.Network
	}{{viaFiles, o.files}, {viaNet, o.tn}} {
		if len(part.to) == 0 {
			continue
		}
		cp := *msg
		cp.To = part.to
		if err := part.net.Send(ctx, &cp); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) < 2 {
		return errors.Join(errs...) // nil, or the one error as it is
	}
	// Both failed: one UnreachableError naming every party, if both are.
	var all []tss.PartyID
	var causes []error
	for _, err := range errs {
		var ue *tss.UnreachableError
		if !errors.As(err, &ue) {
			return err
		}
		all = append(all, ue.Parties...)
		causes = append(causes, ue.Err)
	}
	return &tss.UnreachableError{Parties: all, Err: errors.Join(causes...)}
}

// Send implements tss.Network.
func (o *observedNetwork) Send(ctx context.Context, msg *tss.Message) error {
	err := o.send(ctx, msg)
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

// Connected reports whether a libp2p connection to p is up; a bundle peer
// is never connected.
func (o *observedNetwork) Connected(p tss.PartyID) bool {
	return o.tn != nil && o.tn.Connected(p)
}

// Reach dials p over libp2p; a bundle peer counts as reachable, since its
// messages wait for the next export.
func (o *observedNetwork) Reach(ctx context.Context, p tss.PartyID) error {
	if o.byFiles(p) {
		return nil
	}
	if o.tn == nil {
		return &tss.UnreachableError{Parties: []tss.PartyID{p}, Err: errNoTransport}
	}
	return o.tn.Reach(ctx, p)
}

// errNoTransport is why a site without libp2p cannot reach a peer that is
// not a bundle peer.
var errNoTransport = errors.New("keyquorum: this site has no libp2p transport (every other member is a bundle peer), and this peer is not one of them")

// Request sends a request over libp2p (witness, ping).
func (o *observedNetwork) Request(ctx context.Context, to tss.PartyID, id protocol.ID, req []byte) ([]byte, error) {
	if o.tn == nil {
		return nil, errNoTransport
	}
	return o.tn.Request(ctx, to, id, req)
}

// PeerPublicKey returns a libp2p peer's identity key.
func (o *observedNetwork) PeerPublicKey(p tss.PartyID) (*ecdsa.PublicKey, error) {
	if o.tn == nil {
		return nil, errNoTransport
	}
	return o.tn.PeerPublicKey(p)
}

// Stats returns the transport's counters (zero without one).
func (o *observedNetwork) Stats() transport.Stats {
	if o.tn == nil {
		return transport.Stats{}
	}
	return o.tn.Stats()
}

// ConnSecurity describes the latest libp2p connection with p.
func (o *observedNetwork) ConnSecurity(p tss.PartyID) (transport.ConnSecurity, bool) {
	if o.tn == nil {
		return transport.ConnSecurity{}, false
	}
	return o.tn.ConnSecurity(p)
}

// Addrs returns the libp2p listen addresses (none without a transport).
func (o *observedNetwork) Addrs() []ma.Multiaddr {
	if o.tn == nil {
		return nil
	}
	return o.tn.Addrs()
}

// Close closes both networks.
func (o *observedNetwork) Close() error {
	var errs []error
	if o.files != nil {
		errs = append(errs, o.files.Close())
	}
	if o.tn != nil {
		errs = append(errs, o.tn.Close())
	}
	return errors.Join(errs...)
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
	if o.files != nil {
		for _, id := range o.files.Peers() {
			ps := PeerStatus{PeerID: id, Addrs: []string{}, Bundles: true, Pending: o.files.Pending(id)}
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
			out = append(out, ps)
		}
	}
	return out
}

// checkCommittees warns, by name, about every member of a key's committee
// that the peer file does not list: such a site can never be reached, so
// the key cannot sign with it (a mistyped peer ID in the peer file is the
// usual cause).
func (n *Node) checkCommittees(ctx context.Context) {
	listed := n.members()
	listed[n.party] = true
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
