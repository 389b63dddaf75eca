package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"github.com/keyquorum/keyquorum/transport/internal/inq"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/libp2p/go-libp2p"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// ProtocolID is the libp2p protocol of keyquorum's envelopes (FORMAT.md).
const ProtocolID protocol.ID = "/keyquorum/tss/1.0.0"

// Network is a [tss.Network] over libp2p. Create it with [New] and stop it with
// Close. It is safe for concurrent use.
type Network struct {
	cfg       Config
	log       *slog.Logger
	key       *SignerKey
	hostKey   lcrypto.PrivKey // key, or a test's wrapper around it
	self      peer.ID
	selfParty tss.PartyID
	committee map[peer.ID]bool // the other parties
	links     map[peer.ID]*link
	host      host.Host
	mdns      io.Closer

	ctx    context.Context // done when Close starts
	cancel context.CancelFunc

	mu      sync.Mutex // guards closed, inbound and wg.Add
	closed  bool
	inbound map[peer.ID]int // open inbound streams per peer
	wg      sync.WaitGroup  // every goroutine the network starts or runs in

	// inbox holds received messages until Receive, in one bounded FIFO
	// per peer (InboxSize, InboxBytes), served in turn.
	inbox *inq.Queue[peer.ID, *tss.Message]

	stats counters

	secMu      sync.Mutex
	pendingTLS map[peer.ID]tls.ConnectionState
	security   map[peer.ID]ConnSecurity

	// refusals rate-limits the log lines of the gater's refusals.
	refusals refusalLog
}

var _ tss.Network = (*Network)(nil)

// New starts a libp2p host with the party's identity, listens on
// cfg.ListenAddrs and returns the [Network]. Errors name the setting at
// fault and wrap [ErrInvalidConfig], [ErrUnsupportedKey] or the libp2p error.
func New(cfg Config) (*Network, error) {
	return newNetwork(cfg, nil)
}

// newNetwork is New with a hook for tests that observe how libp2p uses the
// host key: wrapKey, when not nil, wraps the key given to libp2p.
func newNetwork(cfg Config, wrapKey func(lcrypto.PrivKey) lcrypto.PrivKey) (*Network, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	key, err := NewSignerKey(cfg.Identity)
	if err != nil {
		return nil, err
	}
	n := &Network{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "transport", "self", key.PeerID().String()),
		key:        key,
		hostKey:    key,
		self:       key.PeerID(),
		selfParty:  key.PartyID(),
		committee:  make(map[peer.ID]bool),
		links:      make(map[peer.ID]*link),
		inbound:    make(map[peer.ID]int),
		inbox:      inq.New[peer.ID, *tss.Message](cfg.InboxSize, int64(cfg.InboxBytes)),
		pendingTLS: make(map[peer.ID]tls.ConnectionState),
		security:   make(map[peer.ID]ConnSecurity),
	}
	peers := make([]Peer, 0, len(cfg.Peers))
	for i, p := range cfg.Peers {
		if err := p.ID.Validate(); err != nil {
			return nil, fmt.Errorf("%w: peer %d: %v", ErrInvalidConfig, i+1, err)
		}
		if p.ID == n.self {
			continue
		}
		if n.committee[p.ID] {
			return nil, fmt.Errorf("%w: peer %s is listed twice", ErrInvalidConfig, p.ID)
		}
		addrs := make([]ma.Multiaddr, 0, len(p.Addrs))
		for _, a := range p.Addrs {
			a, err := checkPeerAddr(p.ID, a)
			if err != nil {
				return nil, fmt.Errorf("%w: peer %s: address: %v", ErrInvalidConfig, p.ID, err)
			}
			addrs = append(addrs, a)
		}
		n.committee[p.ID] = true
		peers = append(peers, Peer{ID: p.ID, Addrs: addrs})
	}
	if len(n.committee) == 0 {
		return nil, fmt.Errorf("%w: Peers names no party other than this one (%s)", ErrInvalidConfig, n.self)
	}

	if wrapKey != nil {
		n.hostKey = wrapKey(key)
	}
	opts, err := n.hostOptions()
	if err != nil {
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	h, err := libp2p.New(opts...)
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("transport: start libp2p host %s: %w", n.self, err)
	}
	n.host = h
	for _, p := range peers {
		h.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
	}
	h.SetStreamHandler(ProtocolID, n.handleStream)
	for _, p := range peers {
		l := newLink(n, p.ID)
		n.links[p.ID] = l
		n.wg.Add(1)
		go l.run()
	}
	if cfg.MDNS {
		if err := n.startMDNS(); err != nil {
			n.Close()
			return nil, fmt.Errorf("transport: start mDNS: %w", err)
		}
	}
	n.log.Info("transport started", "listen", fmt.Sprint(h.Addrs()), "peers", len(n.committee))
	return n, nil
}

// Self returns this party's ID: the string form of its peer ID.
func (n *Network) Self() tss.PartyID { return n.selfParty }

// PeerID returns this party's libp2p peer ID.
func (n *Network) PeerID() peer.ID { return n.self }

// Addrs returns the addresses the host listens on, with the ports it was
// given (useful with port 0). Share them with the other sites in a peer
// file.
func (n *Network) Addrs() []ma.Multiaddr { return n.host.Addrs() }

// Connected reports whether this host has a live connection to party p
// right now. A peer that is up but idle may have no connection; the next
// Send dials it.
func (n *Network) Connected(p tss.PartyID) bool {
	id, err := PeerIDFromParty(p)
	if err != nil {
		return false
	}
	return n.host.Network().Connectedness(id) == network.Connected
}

// Reach makes sure a connection to committee member p is up: it returns at
// once when one is, and otherwise dials p at the addresses known for it,
// bounded by ctx and Config.DialTimeout. A peer whose port refuses
// connections fails at once. The error is a *tss.UnreachableError naming
// p, or wraps [ErrNotInCommittee] or [ErrClosed]. Signer selection uses it
// to pick co-signers that are up.
func (n *Network) Reach(ctx context.Context, p tss.PartyID) error {
	if n.isClosed() {
		return ErrClosed
	}
	id, err := PeerIDFromParty(p)
	if err != nil {
		return err
	}
	if !n.inCommittee(id) {
		return fmt.Errorf("transport: reach %s: %w", p, ErrNotInCommittee)
	}
	if n.host.Network().Connectedness(id) == network.Connected {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
	defer cancel()
	ctx = network.WithForceDirectDial(ctx, "keyquorum reach")
	if err := n.host.Connect(ctx, peer.AddrInfo{ID: id}); err != nil {
		return &tss.UnreachableError{Parties: []tss.PartyID{p}, Err: err}
	}
	return nil
}

// Stats returns a snapshot of the network's counters.
func (n *Network) Stats() Stats { return n.stats.snapshot() }

// inCommittee reports whether p is one of the other committee parties.
func (n *Network) inCommittee(p peer.ID) bool { return n.committee[p] }

// AddAddrs adds addresses at which a committee peer can be dialed, for
// example ones learned after [New]. It returns an error wrapping
// [ErrNotInCommittee] for a peer outside the committee and [ErrInvalidConfig]
// for an address the network cannot dial.
func (n *Network) AddAddrs(party tss.PartyID, addrs ...ma.Multiaddr) error {
	id, err := PeerIDFromParty(party)
	if err != nil {
		return err
	}
	if !n.inCommittee(id) {
		return fmt.Errorf("transport: add addresses for %s: %w", party, ErrNotInCommittee)
	}
	checked := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		a, err := checkPeerAddr(id, a)
		if err != nil {
			return fmt.Errorf("%w: address for %s: %v", ErrInvalidConfig, party, err)
		}
		checked = append(checked, a)
	}
	n.host.Peerstore().AddAddrs(id, checked, peerstore.PermanentAddrTTL)
	return nil
}

// Send delivers msg to every party in msg.To and returns once the envelope
// has been written to the stream of every recipient. While a recipient is
// unreachable Send reconnects with backoff; while its queue is full it
// waits. A recipient whose host refuses the connection (nothing listens at
// its address: its site is stopped) is reported at once, with a cause that
// matches syscall.ECONNREFUSED; one that does not answer at all is waited
// for. Either wait ends when ctx is done or after [Config.SendTimeout], and
// the recipients not served are reported in a *tss.UnreachableError whose
// cause is the last error (errors.Is works on it, for example with
// context.DeadlineExceeded). A recipient outside the committee is reported
// at once with cause [ErrNotInCommittee]. A payload over [tss.MaxPayloadSize]
// is refused with an error wrapping [tss.ErrMessageTooLarge].
//
// A message to this party itself is put in its own inbox. Messages from one
// caller to one recipient arrive in the order of Send calls. When Send
// returns an error for a recipient, the message may still have reached it
// (it was being written when ctx ended); when it returns nil, the message
// has been written but may still be lost if the recipient crashes, or stops
// reading for [Config.WriteTimeout] (its stream is then reset), before
// reading it. The tss session layer's round timeouts cover all of these.
//
// Send does not rewrite msg.From: a message whose From is not Self is
// dropped by its recipients, which compare it with the authenticated peer.
func (n *Network) Send(ctx context.Context, msg *tss.Message) error {
	if n.isClosed() {
		return ErrClosed
	}
	frame, err := encodeFrame(msg)
	if err != nil {
		return fmt.Errorf("transport: send: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	defer cancel()

	var (
		failed []tss.PartyID
		causes []error
		items  []*sendItem
		seen   = make(map[tss.PartyID]bool, len(msg.To))
	)
	fail := func(p tss.PartyID, err error) {
		failed = append(failed, p)
		if !slices.ContainsFunc(causes, func(e error) bool { return e.Error() == err.Error() }) {
			causes = append(causes, err)
		}
	}
	for _, to := range msg.To {
		if seen[to] {
			continue
		}
		seen[to] = true
		if to == n.selfParty {
			if err := n.deliverLocal(ctx, msg); err != nil {
				if errors.Is(err, ErrClosed) {
					return err
				}
				fail(to, err)
			}
			continue
		}
		id, err := peer.Decode(string(to))
		if err != nil || !n.inCommittee(id) {
			fail(to, ErrNotInCommittee)
			continue
		}
		l := n.links[id]
		it := &sendItem{ctx: ctx, frame: frame, to: to, link: l, done: make(chan error, 1)}
		select {
		case l.queue <- it:
			items = append(items, it)
		case <-ctx.Done():
			fail(to, l.timeoutError(ctx.Err()))
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
	for _, it := range items {
		var err error
		select {
		case err = <-it.done:
		default:
			select {
			case err = <-it.done:
			case <-ctx.Done():
				err = it.link.timeoutError(ctx.Err())
			case <-n.ctx.Done():
				return ErrClosed
			}
		}
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return ErrClosed
			}
			fail(it.to, err)
		}
	}
	if len(failed) > 0 {
		return &tss.UnreachableError{Parties: failed, Err: errors.Join(causes...)}
	}
	return nil
}

// deliverLocal puts a copy of msg in this party's own inbox.
func (n *Network) deliverLocal(ctx context.Context, msg *tss.Message) error {
	if msg.From != n.selfParty {
		n.stats.drop(DropSpoofedSender)
		n.log.Warn("dropped message to self with a foreign sender", "claimed_from", string(msg.From))
		return nil
	}
	cp := *msg
	cp.To = slices.Clone(msg.To)
	cp.Payload = slices.Clone(msg.Payload)
	return n.pushInbox(ctx, n.self, &cp, int64(len(cp.Payload)))
}

// pushInbox waits for room in from's part of the inbox (count and bytes)
// and adds m. Only from waits: the other peers' parts are separate.
func (n *Network) pushInbox(ctx context.Context, from peer.ID, m *tss.Message, weight int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()
	if err := n.inbox.Push(ctx, from, m, weight); err != nil {
		if n.ctx.Err() != nil || errors.Is(err, inq.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	return nil
}

// Receive returns the next message addressed to this party. Its From is the
// peer the connection authenticated. Peers are served in turn, so one that
// sends faster than this party reads delays the others by at most one
// message each. Receive blocks until a message arrives, ctx is done
// (returning ctx.Err()) or the network is closed ([ErrClosed]).
func (n *Network) Receive(ctx context.Context) (*tss.Message, error) {
	if n.isClosed() {
		return nil, ErrClosed
	}
	m, err := n.inbox.Pop(ctx)
	if err != nil {
		if errors.Is(err, inq.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	return m, nil
}

func (n *Network) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// Close stops the network: pending and later calls return [ErrClosed], the
// host's connections are closed and every goroutine the network started
// has returned when Close returns. Calling Close again does nothing.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()

	n.cancel()
	n.inbox.Close()
	var errs []error
	if n.mdns != nil {
		errs = append(errs, n.mdns.Close())
	}
	n.host.RemoveStreamHandler(ProtocolID)
	if err := n.host.Close(); err != nil {
		errs = append(errs, fmt.Errorf("transport: close libp2p host: %w", err))
	}
	n.wg.Wait()
	n.log.Info("transport closed")
	return errors.Join(errs...)
}

// recovered turns a panic in one of the network's goroutines into a log
// line and a counted error.
func (n *Network) recovered(where string, r any) error {
	n.stats.panics.Add(1)
	err := fmt.Errorf("transport: internal error in %s: %v", where, r)
	n.log.Error("recovered panic", "where", where, "panic", fmt.Sprint(r))
	return err
}
