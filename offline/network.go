package offline

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

// Defaults of Config.
const (
	// DefaultTTL is how long a bundle stays valid when Config.TTL is 0.
	DefaultTTL = 24 * time.Hour
	// DefaultClockSkew is how far in the future a bundle's creation time
	// may lie when Config.MaxClockSkew is 0.
	DefaultClockSkew = 5 * time.Minute
	// DefaultMaxQueued is the number of messages waiting to be exported to
	// one party, and waiting to be received, when Config.MaxQueued is 0.
	DefaultMaxQueued = 4 * MaxMessages
)

// maxPlaintext bounds the messages of one bundle, leaving room for the
// header (at most MaxMessages content entries) and the signature.
const maxPlaintext = MaxBundleSize - 1<<20

// Peer is another member of the committee as this site knows it.
type Peer struct {
	// Identity is the member's identity public key (ECDSA P-256, its
	// hsmshare.Identity). Its party ID is derived from it as the libp2p
	// transport derives it.
	Identity *ecdsa.PublicKey
	// HPKE is the member's HPKE public key (P-256, its hsmshare.ECDHKey):
	// bundles to it are encrypted to this key.
	HPKE *ecdh.PublicKey
}

// Config configures a [Network].
type Config struct {
	// Committee is the committee (channel) ID every bundle names: 1 to
	// MaxCommitteeLen bytes of a-z, 0-9, '.', '_', '-'. Sites of one
	// committee use the same ID; a bundle for another committee is refused.
	Committee string
	// Identity signs this site's bundles, typically its hsmshare.Identity.
	// Its public key must be ECDSA P-256; Sign receives a SHA-256 digest
	// with crypto.SHA256 and must return an ASN.1 DER signature.
	Identity crypto.Signer
	// HPKEKey decrypts the bundles this site receives, typically its
	// hsmshare.ECDHKey. Its curve must be P-256.
	HPKEKey ecdh.KeyExchanger
	// Peers are the other members of the committee. An entry with this
	// site's own identity is ignored.
	Peers []Peer
	// Store keeps the sequence numbers across restarts, typically the
	// site's hsmshare.Store (sealed, atomic and durable writes).
	Store tss.Store
	// TTL is how long a bundle made by Export stays valid (DefaultTTL when
	// 0, at most MaxTTL).
	TTL time.Duration
	// MaxClockSkew is how far in the future a received bundle's creation
	// time may be (DefaultClockSkew when 0).
	MaxClockSkew time.Duration
	// MaxQueued bounds the messages waiting to be exported to each party
	// (Send blocks while the bound is reached) and the messages waiting to
	// be received (Import refuses a bundle that does not fit with
	// ErrInboxFull). DefaultMaxQueued when 0.
	MaxQueued int
	// MaxExportSize bounds the bundles Export makes, in bytes: between
	// MinExportSize and MaxBundleSize (the default, when 0). A site whose
	// files travel through a smaller channel (a control API, a QR code
	// sequence) sets it so that every bundle it makes can be delivered;
	// the messages that do not fit wait for the next bundle.
	MaxExportSize int
	// Now returns the current time (time.Now when nil).
	Now func() time.Time
}

// MinExportSize is the smallest Config.MaxExportSize: a bundle of one
// message of the largest payload (tss.MaxPayloadSize) to the largest
// recipient list fits in it.
const MinExportSize = 4 << 20

// exportOverhead bounds the bytes of a bundle that are not messages or
// content entries: the fixed header fields, the encapsulated key, the
// ciphertext's length and tag, and the signature.
const exportOverhead = 1024

// member is a committee member's keys.
type member struct {
	identity *ecdsa.PublicKey
	hpke     hpke.PublicKey
}

// Network is a [tss.Network] over bundle files: Send queues messages per
// recipient, Export makes the signed and encrypted bundle for one
// recipient, and Import checks a received bundle and queues its messages
// for Receive. The caller carries the files between sites. It is safe for
// concurrent use.
type Network struct {
	cfg      Config
	self     tss.PartyID
	pub      *ecdsa.PublicKey
	hpkePriv hpke.PrivateKey
	peers    map[tss.PartyID]member

	// opMu serializes Export, Import and Skip: each writes the sequence
	// state, and sequence numbers must be handed out in order.
	opMu    sync.Mutex
	state   seqState
	version uint64

	mu      sync.Mutex
	out     map[tss.PartyID][]*tss.Message
	in      []*tss.Message
	space   chan struct{} // closed when outgoing messages are exported
	arrived chan struct{} // closed when messages are queued for Receive
	done    chan struct{}
	closed  bool
}

var _ tss.Network = (*Network)(nil)

var (
	kdf  = hpke.HKDFSHA256()
	aead = hpke.AES256GCM()
)

// New checks cfg, reads the committee's sequence state from cfg.Store and
// returns the network.
func New(ctx context.Context, cfg Config) (*Network, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if err := validCommittee(cfg.Committee); err != nil {
		return nil, bad("%v", err)
	}
	if cfg.Identity == nil {
		return nil, bad("no Identity to sign bundles with")
	}
	pub, ok := cfg.Identity.Public().(*ecdsa.PublicKey)
	if !ok || pub == nil || pub.Curve != elliptic.P256() {
		return nil, bad("the Identity's public key is %T, want an ECDSA P-256 key", cfg.Identity.Public())
	}
	self, err := transport.PartyIDFromPublicKey(pub)
	if err != nil {
		return nil, bad("identity: %v", err)
	}
	if cfg.HPKEKey == nil || cfg.HPKEKey.Curve() != ecdh.P256() {
		return nil, bad("HPKEKey must be a P-256 key")
	}
	hpkePriv, err := hpke.NewDHKEMPrivateKey(cfg.HPKEKey)
	if err != nil {
		return nil, bad("HPKEKey: %v", err)
	}
	if cfg.Store == nil {
		return nil, bad("no Store for the sequence numbers")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second || cfg.TTL > MaxTTL {
		return nil, bad("TTL %v is outside 1s to %v", cfg.TTL, MaxTTL)
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = DefaultClockSkew
	}
	if cfg.MaxClockSkew < 0 {
		return nil, bad("MaxClockSkew %v is negative", cfg.MaxClockSkew)
	}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.MaxQueued < 0 {
		return nil, bad("MaxQueued %d is negative", cfg.MaxQueued)
	}
	if cfg.MaxExportSize == 0 {
		cfg.MaxExportSize = MaxBundleSize
	}
	if cfg.MaxExportSize < MinExportSize || cfg.MaxExportSize > MaxBundleSize {
		return nil, bad("MaxExportSize %d is outside %d to %d", cfg.MaxExportSize, MinExportSize, MaxBundleSize)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	peers := make(map[tss.PartyID]member, len(cfg.Peers))
	for i, p := range cfg.Peers {
		if p.Identity == nil || p.HPKE == nil {
			return nil, bad("peer %d lacks its identity or HPKE key", i)
		}
		id, err := transport.PartyIDFromPublicKey(p.Identity)
		if err != nil {
			return nil, bad("peer %d: identity: %v", i, err)
		}
		if id == self {
			continue
		}
		if _, dup := peers[id]; dup {
			return nil, bad("peer %s appears twice", id)
		}
		if p.HPKE.Curve() != ecdh.P256() {
			return nil, bad("peer %s: HPKE key is not on P-256", id)
		}
		hpub, err := hpke.NewDHKEMPublicKey(p.HPKE)
		if err != nil {
			return nil, bad("peer %s: HPKE key: %v", id, err)
		}
		peers[id] = member{identity: p.Identity, hpke: hpub}
	}
	if len(peers) == 0 {
		return nil, bad("no peers besides this site")
	}
	state, version, err := loadState(ctx, cfg.Store, cfg.Committee)
	if err != nil {
		return nil, err
	}
	return &Network{
		cfg: cfg, self: self, pub: pub, hpkePriv: hpkePriv, peers: peers,
		state: state, version: version,
		out:   map[tss.PartyID][]*tss.Message{},
		space: make(chan struct{}), arrived: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// Self returns this site's party ID, derived from its identity key.
func (n *Network) Self() tss.PartyID { return n.self }

// Committee returns the committee ID.
func (n *Network) Committee() string { return n.cfg.Committee }

// Peers returns the other members' party IDs, sorted.
func (n *Network) Peers() []tss.PartyID {
	out := make([]tss.PartyID, 0, len(n.peers))
	for id := range n.peers {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// signalLocked wakes everyone waiting on *ch. n.mu must be held.
func signalLocked(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

// Send queues msg for every recipient in msg.To; a message to this site
// itself goes straight to Receive. It blocks while a recipient's queue
// holds MaxQueued messages, until Export drains it or ctx is done. A
// recipient outside the committee is reported as a *tss.UnreachableError
// wrapping ErrNotInCommittee; the others still get the message.
func (n *Network) Send(ctx context.Context, msg *tss.Message) error {
	if msg == nil {
		return errors.New("offline: nil message")
	}
	if err := checkOutgoing(msg); err != nil {
		return fmt.Errorf("offline: send: %w", err)
	}
	if msg.From != n.self {
		return fmt.Errorf("offline: send: message from %s, but this site is %s", msg.From, n.self)
	}
	if messageSize(msg) > maxPlaintext {
		return fmt.Errorf("offline: send: %w: message of %d bytes", ErrTooLarge, messageSize(msg))
	}
	var unreachable []tss.PartyID
	var targets []tss.PartyID
	for _, to := range slices.Compact(slices.Sorted(slices.Values(msg.To))) {
		if _, ok := n.peers[to]; !ok && to != n.self {
			unreachable = append(unreachable, to)
			continue
		}
		targets = append(targets, to)
	}
	cp := *msg
	cp.To = slices.Clone(msg.To)
	cp.Payload = slices.Clone(msg.Payload)
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return ErrClosed
		}
		full := false
		for _, to := range targets {
			q := len(n.out[to])
			if to == n.self {
				q = len(n.in)
			}
			if q >= n.cfg.MaxQueued {
				full = true
			}
		}
		if !full {
			for _, to := range targets {
				if to == n.self {
					self := cp
					n.in = append(n.in, &self)
					signalLocked(&n.arrived)
					continue
				}
				n.out[to] = append(n.out[to], &cp)
			}
			n.mu.Unlock()
			break
		}
		space := n.space
		n.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("offline: send: waiting for the outgoing queue to be exported: %w", ctx.Err())
		case <-n.done:
			return ErrClosed
		case <-space:
		}
	}
	if len(unreachable) > 0 {
		return &tss.UnreachableError{Parties: unreachable, Err: ErrNotInCommittee}
	}
	return nil
}

// Receive returns the next imported message. It blocks until Import
// queues one, ctx is done or the network is closed.
func (n *Network) Receive(ctx context.Context) (*tss.Message, error) {
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, ErrClosed
		}
		if len(n.in) > 0 {
			m := n.in[0]
			n.in[0] = nil
			n.in = n.in[1:]
			n.mu.Unlock()
			return m, nil
		}
		arrived := n.arrived
		n.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.done:
			return nil, ErrClosed
		case <-arrived:
		}
	}
}

// Pending returns the number of messages waiting to be exported to to.
func (n *Network) Pending(to tss.PartyID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.out[to])
}

// Export makes the next bundle for to: up to MaxMessages of the messages
// queued for it (as many as fit in MaxBundleSize), encrypted to its HPKE
// key and signed with this site's identity key. It returns nil and no
// error when nothing is queued for to. The bundle's sequence number is
// recorded durably before Export returns, so the caller must deliver the
// bundle: a lost one stops the channel until the recipient skips it
// ([Network.Skip]).
func (n *Network) Export(ctx context.Context, to tss.PartyID) ([]byte, error) {
	peer, ok := n.peers[to]
	if !ok {
		return nil, fmt.Errorf("offline: export to %s: %w", to, ErrNotInCommittee)
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()

	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	queue := n.out[to]
	var msgs []*tss.Message
	size := 0
	for _, m := range queue {
		if len(msgs) == MaxMessages || size+messageSize(m) > maxPlaintext ||
			exportOverhead+(len(msgs)+1)*contentLen+size+messageSize(m) > n.cfg.MaxExportSize {
			break
		}
		msgs = append(msgs, m)
		size += messageSize(m)
	}
	n.mu.Unlock()
	if len(msgs) == 0 {
		return nil, nil
	}

	seq := n.state.Sent[to] + 1
	now := n.cfg.Now()
	created := time.UnixMilli(now.UnixMilli())
	h := Header{
		Committee: n.cfg.Committee, Sender: n.self, Recipient: to, Sequence: seq,
		Created: created, Expires: created.Add(n.cfg.TTL.Truncate(time.Millisecond)),
		Messages: len(msgs), Contents: contentsOf(msgs),
	}
	if len(h.Contents) > 1<<16-1 {
		return nil, fmt.Errorf("offline: export to %s: %d distinct session rounds do not fit in one bundle", to, len(h.Contents))
	}
	b := appendHeader(make([]byte, 0, size+len(h.Contents)*contentLen+512), &h)
	header := b[:len(b):len(b)]
	pt := make([]byte, 0, size)
	for _, m := range msgs {
		pt = appendMessage(pt, m)
	}
	sealed, err := hpke.Seal(peer.hpke, kdf, aead, hpkeInfo(header), pt)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("offline: export to %s: encrypt: %w", to, err)
	}
	if len(sealed) < encLen+minCiphertext {
		return nil, fmt.Errorf("offline: export to %s: HPKE returned %d bytes", to, len(sealed))
	}
	b = append(b, encLen)
	b = append(b, sealed[:encLen]...)
	b = appendU32Bytes(b, sealed[encLen:])
	digest := signedDigest(b)
	sig, err := n.cfg.Identity.Sign(rand.Reader, digest, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("offline: export to %s: sign with the identity key: %w", to, err)
	}
	if len(sig) < minSigLen || len(sig) > maxSigLen || !ecdsa.VerifyASN1(n.pub, digest, sig) {
		return nil, fmt.Errorf("offline: export to %s: the identity key made a signature that does not verify; check the token", to)
	}
	b = append(b, byte(len(sig)))
	b = append(b, sig...)
	if len(b) > MaxBundleSize {
		return nil, fmt.Errorf("offline: export to %s: %w: bundle of %d bytes", to, ErrTooLarge, len(b))
	}

	next := n.state.clone()
	next.Sent[to] = seq
	if err := saveState(ctx, n.cfg.Store, n.cfg.Committee, n.version+1, next); err != nil {
		return nil, fmt.Errorf("offline: export to %s: %w", to, err)
	}
	n.state, n.version = next, n.version+1

	n.mu.Lock()
	q := n.out[to]
	clear(q[:len(msgs)])
	n.out[to] = q[len(msgs):]
	if len(n.out[to]) == 0 {
		delete(n.out, to)
	}
	signalLocked(&n.space)
	n.mu.Unlock()
	return b, nil
}

func appendU32Bytes(b, v []byte) []byte {
	b = append(b, byte(len(v)>>24), byte(len(v)>>16), byte(len(v)>>8), byte(len(v)))
	return append(b, v...)
}

// Import checks a bundle as FORMAT.md specifies ("What the receiver
// checks") and queues its messages for Receive. It returns the bundle's
// header. A refused bundle changes nothing, and the error wraps the
// sentinel of the first check that failed (ErrMalformed, ErrTooLarge,
// ErrUnsupportedVersion, ErrUnknownSender, ErrTampered, ErrWrongCommittee,
// ErrWrongRecipient, ErrExpired, ErrReplayed, ErrOutOfOrder, ErrInboxFull).
func (n *Network) Import(ctx context.Context, b []byte) (Header, error) {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	bd, msgs, err := n.open(b)
	if err != nil {
		return Header{}, fmt.Errorf("offline: import %w", err)
	}
	what := fmt.Sprintf("bundle %d from %s", bd.Sequence, bd.Sender)
	n.mu.Lock()
	closed, room := n.closed, n.cfg.MaxQueued-len(n.in)
	n.mu.Unlock()
	if closed {
		return Header{}, ErrClosed
	}
	if len(msgs) > room {
		return Header{}, fmt.Errorf("offline: import %s: %w: %d messages, room for %d; let the engine receive, then import again", what, ErrInboxFull, len(msgs), room)
	}

	next := n.state.clone()
	next.Recv[bd.Sender] = bd.Sequence
	if err := saveState(ctx, n.cfg.Store, n.cfg.Committee, n.version+1, next); err != nil {
		return Header{}, fmt.Errorf("offline: import %s: %w", what, err)
	}
	n.state, n.version = next, n.version+1

	n.mu.Lock()
	n.in = append(n.in, msgs...)
	signalLocked(&n.arrived)
	n.mu.Unlock()
	return bd.Header, nil
}

// Peek makes every check Import makes, decrypts the bundle and returns its
// header and messages, but accepts nothing: the sequence state and the
// receive queue stay as they were, so the same bundle can be imported
// afterwards. It is for an operator who wants to see what a bundle asks of
// the site before importing it. The errors are Import's (without
// ErrInboxFull). The messages' payloads are the senders' protocol messages;
// the caller must not pass them to an engine.
func (n *Network) Peek(ctx context.Context, b []byte) (Header, []*tss.Message, error) {
	if err := ctx.Err(); err != nil {
		return Header{}, nil, err
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	bd, msgs, err := n.open(b)
	if err != nil {
		return Header{}, nil, fmt.Errorf("offline: peek %w", err)
	}
	return bd.Header, msgs, nil
}

// Verify checks the layout of a bundle and its signature by its sender, a
// member of this site's committee, and returns its header; unlike Peek it
// needs no HPKE key and works for bundles addressed to any member. It
// makes none of the other checks (recipient, expiry, sequence).
func (n *Network) Verify(b []byte) (Header, error) {
	bd, err := parseBundle(b)
	if err != nil {
		return Header{}, fmt.Errorf("offline: verify: %w", err)
	}
	if err := n.verifySignature(bd); err != nil {
		return Header{}, fmt.Errorf("offline: verify %w", err)
	}
	return bd.Header, nil
}

// VerifyFrom checks the layout of a bundle and its signature under
// sender, the identity public key of the party the bundle names as its
// sender, and returns its header; it is Verify for a tool that holds the
// members' public keys but no Network (kqnode offline show). It fails with
// ErrUnknownSender when sender's party ID is not the bundle's sender and
// ErrTampered when the signature does not verify.
func VerifyFrom(b []byte, sender *ecdsa.PublicKey) (Header, error) {
	bd, err := parseBundle(b)
	if err != nil {
		return Header{}, fmt.Errorf("offline: verify: %w", err)
	}
	id, err := transport.PartyIDFromPublicKey(sender)
	if err != nil {
		return Header{}, fmt.Errorf("offline: verify: the sender's key: %w", err)
	}
	if id != bd.Sender {
		return Header{}, fmt.Errorf("offline: verify bundle %d from %s: %w: the key given is %s's", bd.Sequence, bd.Sender, ErrUnknownSender, id)
	}
	if !ecdsa.VerifyASN1(sender, signedDigest(bd.signed), bd.sig) {
		return Header{}, fmt.Errorf("offline: verify bundle %d from %s: %w: the signature does not verify under the sender's identity key; the file was changed or not made by the sender", bd.Sequence, bd.Sender, ErrTampered)
	}
	return bd.Header, nil
}

// verifySignature checks that bd's sender is a known member and signed it.
func (n *Network) verifySignature(bd *bundle) error {
	what := fmt.Sprintf("bundle %d from %s", bd.Sequence, bd.Sender)
	peer, ok := n.peers[bd.Sender]
	if !ok {
		return fmt.Errorf("%s: %w: %s is not a member of committee %s as this site knows it", what, ErrUnknownSender, bd.Sender, n.cfg.Committee)
	}
	if !ecdsa.VerifyASN1(peer.identity, signedDigest(bd.signed), bd.sig) {
		return fmt.Errorf("%s: %w: the signature does not verify under the sender's identity key; the file was changed or not made by the sender", what, ErrTampered)
	}
	return nil
}

// open makes the receiver's checks 1 to 6 of FORMAT.md and returns the
// parsed bundle and its messages. n.opMu must be held. Its errors start
// with what was opened ("bundle N from P: ...").
func (n *Network) open(b []byte) (*bundle, []*tss.Message, error) {
	bd, err := parseBundle(b)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle: %w", err)
	}
	what := fmt.Sprintf("bundle %d from %s", bd.Sequence, bd.Sender)
	if err := n.verifySignature(bd); err != nil {
		return nil, nil, err
	}
	if bd.Committee != n.cfg.Committee {
		return nil, nil, fmt.Errorf("%s: %w: made for committee %s, this network is committee %s", what, ErrWrongCommittee, bd.Committee, n.cfg.Committee)
	}
	if bd.Recipient != n.self {
		return nil, nil, fmt.Errorf("%s: %w: addressed to %s, this site is %s; import it there", what, ErrWrongRecipient, bd.Recipient, n.self)
	}
	now := n.cfg.Now()
	if !now.Before(bd.Expires) {
		return nil, nil, fmt.Errorf("%s: %w at %s; the sender must run the sessions again", what, ErrExpired, bd.Expires.UTC().Format(time.RFC3339))
	}
	if bd.Created.After(now.Add(n.cfg.MaxClockSkew)) {
		return nil, nil, fmt.Errorf("%s: %w: made at %s, in the future; check both sites' clocks", what, ErrExpired, bd.Created.UTC().Format(time.RFC3339))
	}
	last := n.state.Recv[bd.Sender]
	switch {
	case bd.Sequence <= last:
		return nil, nil, fmt.Errorf("%s: %w: bundle %d from %s was the last one accepted", what, ErrReplayed, last, bd.Sender)
	case bd.Sequence > last+1:
		return nil, nil, fmt.Errorf("%s: %w: bundles %d to %d from %s are missing; import them first", what, ErrOutOfOrder, last+1, bd.Sequence-1, bd.Sender)
	}
	// An encapsulated key that is not a P-256 point is the sender's (or a
	// forger's) fault, not the token's: check it before the token is asked.
	if _, err := ecdh.P256().NewPublicKey(bd.enc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w: the encapsulated key is not a P-256 point", what, ErrTampered)
	}
	r, err := hpke.NewRecipient(bd.enc, n.hpkePriv, kdf, aead, hpkeInfo(bd.header))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: decapsulate with the HPKE key (check the token): %w", what, err)
	}
	pt, err := r.Open(nil, bd.ct)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: the ciphertext does not decrypt with this site's HPKE key", what, ErrTampered)
	}
	msgs, err := parseMessages(bd, pt)
	if err != nil {
		clear(pt)
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return bd, msgs, nil
}

// Skip declares the bundles from from up to sequence through lost: the
// next bundle accepted from from is through+1. It is for the operator of a
// site whose import stopped at ErrOutOfOrder because a bundle was lost or
// expired; the sessions it carried fail. Skipping backwards is a no-op.
func (n *Network) Skip(ctx context.Context, from tss.PartyID, through uint64) error {
	if _, ok := n.peers[from]; !ok {
		return fmt.Errorf("offline: skip bundles from %s: %w", from, ErrNotInCommittee)
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	if through <= n.state.Recv[from] {
		return nil
	}
	next := n.state.clone()
	next.Recv[from] = through
	if err := saveState(ctx, n.cfg.Store, n.cfg.Committee, n.version+1, next); err != nil {
		return fmt.Errorf("offline: skip bundles from %s: %w", from, err)
	}
	n.state, n.version = next, n.version+1
	return nil
}

// SkipSent sets the sequence of the bundles this site exports to to: the
// next one is through+1. It is for the operator of a site whose store was
// restored from a backup: the restored store remembers fewer bundles sent
// than to accepted, so to refuses the next ones with ErrReplayed, and that
// error names the last bundle it accepted, which is through. Numbers are
// never reused by skipping; skipping backwards is a no-op.
func (n *Network) SkipSent(ctx context.Context, to tss.PartyID, through uint64) error {
	if _, ok := n.peers[to]; !ok {
		return fmt.Errorf("offline: skip bundles to %s: %w", to, ErrNotInCommittee)
	}
	n.opMu.Lock()
	defer n.opMu.Unlock()
	if through <= n.state.Sent[to] {
		return nil
	}
	next := n.state.clone()
	next.Sent[to] = through
	if err := saveState(ctx, n.cfg.Store, n.cfg.Committee, n.version+1, next); err != nil {
		return fmt.Errorf("offline: skip bundles to %s: %w", to, err)
	}
	n.state, n.version = next, n.version+1
	return nil
}

// Close stops the network: Send, Receive, Export and Import return
// ErrClosed. Messages not exported are dropped. Close is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		close(n.done)
		n.out, n.in = nil, nil
	}
	return nil
}
