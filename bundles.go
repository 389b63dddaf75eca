package keyquorum

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/offline"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// A cold site, or a site that talks to one, reaches some members of its
// committee through bundle files (package offline) instead of libp2p. This
// file holds what the Node adds around offline.Network: the members'
// enrolment (BundlePeer, the identity file every site makes once), and the
// operator's three actions: export the bundle for a member, look at a
// received bundle before importing it, import it.

// ErrNoBundlePeers means a bundle operation was asked of a site opened
// without Config.BundlePeers.
var ErrNoBundlePeers = errors.New("keyquorum: this site has no bundle peers (set Config.BundlePeers, kqnode run --bundle-peers FILE)")

// ErrBadBundleIdentity means a bundle identity (the file a site makes with
// BundleIdentity) is malformed or contradicts itself.
var ErrBadBundleIdentity = errors.New("keyquorum: bad bundle identity")

// BundlePeer is a committee member as a site that exchanges bundle files
// with it knows it: its identity key (whose peer ID is its party ID) and
// its HPKE key. Each site makes its own with [Node.BundleIdentity] and
// gives it to the others, who list it in Config.BundlePeers.
type BundlePeer struct {
	// Identity is the member's HSM identity public key (P-256).
	Identity *ecdsa.PublicKey
	// HPKE is the member's HPKE public key (P-256): bundles to it are
	// encrypted to this key.
	HPKE *ecdh.PublicKey
}

// bundleIdentityVersion is the version of a bundle identity's JSON form.
const bundleIdentityVersion = 1

// bundleIdentityJSON is a BundlePeer's JSON form.
type bundleIdentityJSON struct {
	V        int    `json:"v"`
	PeerID   string `json:"peer_id"`
	Identity string `json:"identity_public_key"`
	HPKE     string `json:"hpke_public_key"`
}

// PartyID returns the member's party ID, derived from its identity key.
func (p BundlePeer) PartyID() (tss.PartyID, error) {
	if p.Identity == nil {
		return "", fmt.Errorf("%w: no identity key", ErrBadBundleIdentity)
	}
	id, err := transport.PartyIDFromPublicKey(p.Identity)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadBundleIdentity, err)
	}
	return id, nil
}

// MarshalJSON encodes the member as
// {"v":1,"peer_id":...,"identity_public_key":...,"hpke_public_key":...},
// the keys as lowercase hex of their uncompressed points.
func (p BundlePeer) MarshalJSON() ([]byte, error) {
	id, err := p.PartyID()
	if err != nil {
		return nil, err
	}
	if p.HPKE == nil {
		return nil, fmt.Errorf("%w: no HPKE key", ErrBadBundleIdentity)
	}
	ib, err := p.Identity.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBundleIdentity, err)
	}
	return json.Marshal(bundleIdentityJSON{V: bundleIdentityVersion, PeerID: string(id),
		Identity: hex.EncodeToString(ib), HPKE: hex.EncodeToString(p.HPKE.Bytes())})
}

// UnmarshalJSON decodes what MarshalJSON makes, checking that both keys are
// P-256 points and that the peer ID is the identity key's.
func (p *BundlePeer) UnmarshalJSON(b []byte) error {
	var j bundleIdentityJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: %w", ErrBadBundleIdentity, err)
	}
	if j.V != bundleIdentityVersion {
		return fmt.Errorf("%w: version %d, this build reads version %d", ErrBadBundleIdentity, j.V, bundleIdentityVersion)
	}
	ib, err := hex.DecodeString(j.Identity)
	if err != nil {
		return fmt.Errorf("%w: identity_public_key is not hex", ErrBadBundleIdentity)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), ib)
	if err != nil {
		return fmt.Errorf("%w: identity_public_key is not a P-256 point: %w", ErrBadBundleIdentity, err)
	}
	hb, err := hex.DecodeString(j.HPKE)
	if err != nil {
		return fmt.Errorf("%w: hpke_public_key is not hex", ErrBadBundleIdentity)
	}
	hpub, err := ecdh.P256().NewPublicKey(hb)
	if err != nil {
		return fmt.Errorf("%w: hpke_public_key is not a P-256 point: %w", ErrBadBundleIdentity, err)
	}
	q := BundlePeer{Identity: pub, HPKE: hpub}
	id, err := q.PartyID()
	if err != nil {
		return err
	}
	if string(id) != j.PeerID {
		return fmt.Errorf("%w: peer_id %q is not the peer ID of identity_public_key (%s); the file was edited or mixed from two sites", ErrBadBundleIdentity, j.PeerID, id)
	}
	*p = q
	return nil
}

// hpkeKey loads the site's HPKE key, creating it when create is set or
// Config.CreateKeys allows.
func (n *Node) hpkeKey(ctx context.Context, create bool) (*hsmshare.ECDHKey, error) {
	n.hpkeMu.Lock()
	defer n.hpkeMu.Unlock()
	if n.hpke != nil {
		return n.hpke, nil
	}
	label := n.cfg.HPKEKeyLabel
	k, err := n.token.ECDHKey(ctx, label)
	if errors.Is(err, hsmshare.ErrKeyNotFound) && (create || n.cfg.CreateKeys) {
		if k, err = n.token.CreateECDHKey(ctx, label); err == nil {
			n.log.Info("created HPKE key", "label", label, "id", k.ID())
		}
	}
	if errors.Is(err, hsmshare.ErrKeyNotFound) {
		return nil, fmt.Errorf("keyquorum: HPKE key %q on token %q: %w (make it with `kqnode offline identity`, or Node.BundleIdentity)", label, n.token.Label(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("keyquorum: HPKE key %q on token %q: %w", label, n.token.Label(), err)
	}
	n.hpke = k
	return k, nil
}

// BundleIdentity returns this site's bundle identity: its identity key and
// its HPKE key, which the other sites of a committee that exchanges bundle
// files with it list in Config.BundlePeers. It loads the HPKE key (label
// Config.HPKEKeyLabel) and creates it in the token when there is none yet;
// it works on a Node opened with Config.Offline, which is how a site is
// enrolled before its first start. A token without CKM_ECDH1_DERIVE gives
// a *hsmshare.MechanismError.
func (n *Node) BundleIdentity(ctx context.Context) (BundlePeer, error) {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return BundlePeer{}, err
	}
	defer done()
	k, err := n.hpkeKey(ctx, true)
	if err != nil {
		return BundlePeer{}, err
	}
	return BundlePeer{Identity: n.identity.PublicKey(), HPKE: k.PublicKey()}, nil
}

// members returns the committee as this site's configuration lists it:
// Config.Peers and Config.BundlePeers (an identity that does not derive a
// party ID is left out; Open refuses it).
func (n *Node) members() map[tss.PartyID]bool {
	out := map[tss.PartyID]bool{}
	for _, p := range n.cfg.Peers {
		out[p.PartyID()] = true
	}
	for _, p := range n.cfg.BundlePeers {
		if id, err := p.PartyID(); err == nil {
			out[id] = true
		}
	}
	return out
}

// libp2pPeers counts the members of Config.Peers other than this site.
func (n *Node) libp2pPeers() int {
	c := 0
	for _, p := range n.cfg.Peers {
		if p.PartyID() != n.party {
			c++
		}
	}
	return c
}

// openBundles opens the offline network of Config.BundlePeers.
func (n *Node) openBundles(ctx context.Context) (*offline.Network, error) {
	inPeers := map[tss.PartyID]bool{}
	for _, p := range n.cfg.Peers {
		inPeers[p.PartyID()] = true
	}
	peers := make([]offline.Peer, 0, len(n.cfg.BundlePeers))
	for i, bp := range n.cfg.BundlePeers {
		id, err := bp.PartyID()
		if err != nil {
			return nil, fmt.Errorf("%w: BundlePeers[%d]: %w", ErrInvalidConfig, i, err)
		}
		if bp.HPKE == nil {
			return nil, fmt.Errorf("%w: BundlePeers[%d] (%s) has no HPKE key", ErrInvalidConfig, i, id)
		}
		if id != n.party && inPeers[id] {
			return nil, fmt.Errorf("%w: %s is in both Peers and BundlePeers; a member is reached one way, list it once", ErrInvalidConfig, id)
		}
		peers = append(peers, offline.Peer{Identity: bp.Identity, HPKE: bp.HPKE})
	}
	k, err := n.hpkeKey(ctx, false)
	if err != nil {
		return nil, err
	}
	files, err := offline.New(ctx, offline.Config{
		Committee: n.cfg.BundleCommittee, Identity: n.identity, HPKEKey: k, Peers: peers, Store: n.store, TTL: n.cfg.BundleTTL,
		MaxExportSize: n.cfg.BundleMaxSize,
	})
	if err != nil {
		return nil, fmt.Errorf("keyquorum: bundle network: %w", err)
	}
	return files, nil
}

// bundles returns the offline network, or ErrNoBundlePeers.
func (n *Node) bundles() (*offline.Network, error) {
	if n.net == nil || n.net.files == nil {
		return nil, ErrNoBundlePeers
	}
	return n.net.files, nil
}

// BundleInfo describes a bundle: its header, and, when this site could open
// it, what the sessions in it ask.
type BundleInfo struct {
	// Committee is the committee ID the bundle names.
	Committee string `json:"committee"`
	// Sender and Recipient are the parties it is from and to.
	Sender    tss.PartyID `json:"sender"`
	Recipient tss.PartyID `json:"recipient"`
	// Sequence numbers the bundles from Sender to Recipient, from 1.
	Sequence uint64 `json:"sequence"`
	// Created and Expires bound its validity.
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Messages is the number of messages in it.
	Messages int `json:"messages"`
	// Size is its length in bytes.
	Size int `json:"size"`
	// Verified reports that its signature verified under the sender's
	// identity key as this site knows it. A bundle whose sender this site
	// does not know is shown unverified: nothing in it is to be trusted.
	Verified bool `json:"verified"`
	// Opened reports that this site decrypted it (it is addressed to this
	// site) and Sessions list what the messages are.
	Opened bool `json:"opened"`
	// Sessions are the sessions in the bundle, in the header's order.
	Sessions []BundleSession `json:"sessions"`
}

// BundleSession is one session's part of a bundle.
type BundleSession struct {
	// Session is the session ID, in hex.
	Session string `json:"session"`
	// Rounds are the protocol rounds of its messages (0: the messages
	// around a protocol, such as proposals and answers).
	Rounds []uint32 `json:"rounds"`
	// Types are the message types (propose, accept, protocol, result,
	// ...), when the bundle was opened.
	Types []string `json:"types,omitempty"`
	// Request is what a proposal in the bundle asks, when there is one.
	Request *BundleRequest `json:"request,omitempty"`
}

// BundleRequest is a proposal as the site that opened the bundle sees it:
// the operation, and for signing, the digests, the intent they come from
// (as this site derives its summary with its own copy of the key) and what
// this site's signing policy says of it now. The engine checks all of it
// again when the bundle is imported; nothing here is a promise.
type BundleRequest struct {
	// Op is the operation: keygen, sign (GG18), online (GG20 signing),
	// presign, reshare, commit or reconcile.
	Op string `json:"op"`
	// Initiator is the site that proposed it.
	Initiator tss.PartyID `json:"initiator"`
	// KeyID names the key (empty for keygen).
	KeyID string `json:"key_id,omitempty"`
	// Parties are the session's participants.
	Parties []tss.PartyID `json:"parties"`
	// Threshold is M of a keygen or of a reshare's new committee.
	Threshold int `json:"threshold,omitempty"`
	// Path is the derivation path of a signature or presignature.
	Path string `json:"path,omitempty"`
	// Count is the number of presignatures a presign session makes.
	Count int `json:"count,omitempty"`
	// Digests are the digests a signing session asks to sign, in hex.
	Digests []string `json:"digests,omitempty"`
	// IntentKind is the kind of the intent that came with a signing
	// proposal (raw digest, PSBT, Ethereum transaction, ...).
	IntentKind string `json:"intent_kind,omitempty"`
	// IntentHash identifies that intent, in hex.
	IntentHash string `json:"intent_hash,omitempty"`
	// Summary is what the intent does (wallet.Summary's JSON), derived by
	// this site from the intent with its own copy of the key.
	Summary json.RawMessage `json:"summary,omitempty"`
	// Covered reports that every digest is one this site derives from the
	// intent; a proposal that is not covered is refused on import.
	Covered bool `json:"covered,omitempty"`
	// Policy is this site's signing policy's decision on it now: the rule
	// that allows it, or why it is refused.
	Policy string `json:"policy,omitempty"`
	// Problem says what this site could not check (no intent, unknown
	// key, a malformed proposal).
	Problem string `json:"problem,omitempty"`
}

func infoOf(h offline.Header, size int) *BundleInfo {
	info := &BundleInfo{Committee: h.Committee, Sender: h.Sender, Recipient: h.Recipient, Sequence: h.Sequence,
		Created: h.Created.UTC(), Expires: h.Expires.UTC(), Messages: h.Messages, Size: size, Sessions: []BundleSession{}}
	for _, c := range h.Contents {
		id := hex.EncodeToString(c.Session[:])
		if k := len(info.Sessions); k > 0 && info.Sessions[k-1].Session == id {
			info.Sessions[k-1].Rounds = append(info.Sessions[k-1].Rounds, c.Round)
			continue
		}
		info.Sessions = append(info.Sessions, BundleSession{Session: id, Rounds: []uint32{c.Round}})
	}
	return info
}

// ExportBundle makes the next bundle of this site's messages to the bundle
// peer to: encrypted to its HPKE key and signed by this site's identity
// key (package offline). It returns nil bytes when nothing is waiting for
// to. The bundle's sequence number is recorded before ExportBundle
// returns: deliver every bundle, in order, or the peer stops at the gap
// until its operator skips it.
func (n *Node) ExportBundle(ctx context.Context, to tss.PartyID) ([]byte, *BundleInfo, error) {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	files, err := n.bundles()
	if err != nil {
		return nil, nil, err
	}
	b, err := files.Export(ctx, to)
	if err != nil || b == nil {
		return nil, nil, err
	}
	h, err := offline.Inspect(b)
	if err != nil {
		return nil, nil, fmt.Errorf("keyquorum: the bundle just made for %s does not parse: %w", to, err)
	}
	info := infoOf(h, len(b))
	info.Verified = true
	n.log.Info("bundle exported", "to", string(to), "sequence", h.Sequence, "messages", h.Messages, "bytes", len(b))
	n.recordQuiet(auditBundleExport, bundleFields(info))
	return b, info, nil
}

// PendingBundle returns the number of messages waiting to be exported to
// the bundle peer to. It fails with ErrNoBundlePeers, or
// offline.ErrNotInCommittee when to is not a bundle peer.
func (n *Node) PendingBundle(to tss.PartyID) (int, error) {
	files, err := n.bundles()
	if err != nil {
		return 0, err
	}
	if !slices.Contains(files.Peers(), to) {
		return 0, fmt.Errorf("keyquorum: %s is not a bundle peer of this site: %w", to, offline.ErrNotInCommittee)
	}
	return files.Pending(to), nil
}

// ImportBundle checks a bundle from a bundle peer (package offline: its
// sender's signature, committee, recipient, expiry and sequence, then its
// decryption with this site's HPKE key) and hands its messages to the
// engine, which checks every proposal in it as it checks one that arrives
// over libp2p, signing policy included. A refused bundle changes nothing;
// the error wraps the offline sentinel of the check that failed
// (offline.ErrReplayed, offline.ErrTampered, offline.ErrWrongRecipient,
// ...).
func (n *Node) ImportBundle(ctx context.Context, b []byte) (*BundleInfo, error) {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return nil, err
	}
	defer done()
	files, err := n.bundles()
	if err != nil {
		return nil, err
	}
	h, err := files.Import(ctx, b)
	if err != nil {
		n.log.Warn("bundle refused", "err", err.Error())
		fields := map[string]string{"bytes": fmt.Sprint(len(b)), "reason": truncateField(err.Error())}
		if claimed, perr := offline.Inspect(b); perr == nil {
			// What the file claims; unauthenticated unless the reason
			// says otherwise.
			fields["claimed_from"], fields["sequence"] = string(claimed.Sender), fmt.Sprint(claimed.Sequence)
		}
		n.recordQuiet(auditBundleRefuse, fields)
		return nil, fmt.Errorf("keyquorum: %w", err)
	}
	info := infoOf(h, len(b))
	info.Verified, info.Opened = true, true
	n.log.Info("bundle imported", "from", string(h.Sender), "sequence", h.Sequence, "messages", h.Messages)
	n.recordQuiet(auditBundleImport, bundleFields(info))
	return info, nil
}

// bundleFields are the audit fields of an exported or imported bundle.
func bundleFields(info *BundleInfo) map[string]string {
	sessions := make([]string, len(info.Sessions))
	for i, s := range info.Sessions {
		sessions[i] = s.Session
	}
	return map[string]string{"committee": info.Committee, "from": string(info.Sender), "to": string(info.Recipient),
		"sequence": fmt.Sprint(info.Sequence), "messages": fmt.Sprint(info.Messages), "bytes": fmt.Sprint(info.Size),
		"sessions": strings.Join(sessions, ",")}
}

// SkipBundles declares the bundles from the bundle peer from up to
// sequence through lost (offline.Network.Skip), for an import stopped by
// offline.ErrOutOfOrder: the sessions they carried fail.
func (n *Node) SkipBundles(ctx context.Context, from tss.PartyID, through uint64) error {
	return n.skipBundles(ctx, "from", from, through, (*offline.Network).Skip, "bundles declared lost")
}

// SkipSentBundles numbers the next bundle this site exports to to
// through+1 (offline.Network.SkipSent). It is for a site whose store was
// restored from a backup: the restored store remembers fewer bundles sent
// than to accepted, to refuses the next ones as replayed, and its refusal
// names the last bundle it accepted, which is through. Recorded in the
// audit log (bundle.skip, with to) before it takes effect.
func (n *Node) SkipSentBundles(ctx context.Context, to tss.PartyID, through uint64) error {
	return n.skipBundles(ctx, "to", to, through, (*offline.Network).SkipSent, "bundle numbers skipped after a restore")
}

// skipBundles records a skip of the channel from or to peer (dir) in the
// audit log, then applies it.
func (n *Node) skipBundles(ctx context.Context, dir string, peer tss.PartyID, through uint64,
	skip func(*offline.Network, context.Context, tss.PartyID, uint64) error, logMsg string) error {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	files, err := n.bundles()
	if err != nil {
		return err
	}
	if err := n.record(ctx, auditBundleSkip, map[string]string{dir: string(peer), "through": fmt.Sprint(through)}); err != nil {
		return fmt.Errorf("keyquorum: skip bundles %s %s: %w", dir, peer, err)
	}
	if err := skip(files, ctx, peer, through); err != nil {
		return fmt.Errorf("keyquorum: %w", err)
	}
	n.log.Warn(logMsg, dir, string(peer), "through", through)
	return nil
}

// InspectBundle shows what a bundle is and asks, without importing it:
// its header; whether its signature verifies under the sender's identity
// key; and, for a bundle addressed to this site, every message type and
// every proposal in it, with the digests a signing proposal asks for, the
// summary of its intent as this site derives it, and this site's signing
// policy's decision. Nothing is recorded. The returned error is what
// ImportBundle would refuse the bundle with (the info then holds what
// could be read); a bundle that does not even parse gives nil info.
func (n *Node) InspectBundle(ctx context.Context, b []byte) (*BundleInfo, error) {
	ctx, done, err := n.enter(ctx, false)
	if err != nil {
		return nil, err
	}
	defer done()
	h, err := offline.Inspect(b)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: inspect bundle: %w", err)
	}
	info := infoOf(h, len(b))
	files, err := n.bundles()
	if err != nil {
		return info, err
	}
	if h.Recipient != n.party {
		if _, err := files.Verify(b); err != nil {
			return info, fmt.Errorf("keyquorum: %w", err)
		}
		info.Verified = true
		return info, fmt.Errorf("keyquorum: bundle %d from %s: %w: addressed to %s, this site is %s; import it there",
			h.Sequence, h.Sender, offline.ErrWrongRecipient, h.Recipient, n.party)
	}
	_, msgs, err := files.Peek(ctx, b)
	if err != nil {
		if _, verr := files.Verify(b); verr == nil {
			info.Verified = true
		}
		return info, fmt.Errorf("keyquorum: %w", err)
	}
	info.Verified, info.Opened = true, true
	for i := range info.Sessions {
		s := &info.Sessions[i]
		for _, m := range msgs {
			if hex.EncodeToString(m.Session[:]) != s.Session {
				continue
			}
			if t := m.Type.String(); !slices.Contains(s.Types, t) {
				s.Types = append(s.Types, t)
			}
			if m.Type == tss.MsgPropose && s.Request == nil {
				s.Request = n.describeProposal(ctx, m.Payload)
			}
		}
	}
	return info, nil
}

// describeProposal says what a proposal asks, for InspectBundle.
func (n *Node) describeProposal(ctx context.Context, payload []byte) *BundleRequest {
	p, err := tss.ParseProposal(payload)
	if err != nil {
		return &BundleRequest{Problem: err.Error()}
	}
	r := &BundleRequest{Op: string(p.Op), Initiator: p.Initiator, KeyID: p.KeyID, Parties: p.Parties,
		Threshold: p.Threshold, Path: p.Path, Count: p.Count}
	if p.Op != tss.OpSign && p.Op != tss.OpOnline {
		return r
	}
	digests, err := p.SigningDigests()
	if err != nil {
		r.Problem = err.Error()
		return r
	}
	for _, d := range digests {
		r.Digests = append(r.Digests, hex.EncodeToString(d[:]))
	}
	ev, err := decodeSignEvidence(p.Evidence)
	if err != nil {
		r.Problem = err.Error() + "; this site refuses to sign it"
		return r
	}
	in, err := policy.ParseIntent(ev.intent)
	if err != nil {
		r.Problem = fmt.Sprintf("the intent does not parse (%v); this site refuses to sign it", err)
		return r
	}
	r.IntentKind = string(in.Kind())
	h := in.Hash()
	r.IntentHash = hex.EncodeToString(h[:])
	if n.eng == nil {
		r.Problem = "the site runs without its engine; the intent's summary is not derived"
		return r
	}
	plan, err := n.plan(ctx, p.KeyID, in)
	if err != nil {
		r.Problem = fmt.Sprintf("this site cannot derive the intent's plan: %v", err)
		return r
	}
	r.Summary = plan.SummaryJSON
	hp, err := hd.ParsePath(orRoot(p.Path))
	r.Covered = err == nil
	for _, d := range digests {
		if err == nil && !plan.Covers(d, hp) {
			r.Covered = false
		}
	}
	switch {
	case n.signPol == nil:
		r.Policy = "refused: " + ErrNoSigningPolicy.Error()
	default:
		var approvals []policy.Approval
		if len(ev.approvals) > 0 {
			if approvals, err = policy.DecodeApprovals(ev.approvals); err != nil {
				r.Policy = "refused: the approvals do not decode: " + err.Error()
				return r
			}
		}
		d, err := n.signPol.pol.Evaluate(ctx, plan, policy.Input{Now: n.signPol.now(), Approvals: approvals, Velocity: n.signPol.velocity})
		switch {
		case err != nil:
			r.Policy = "refused: " + err.Error()
		case d != nil && d.Allowed:
			r.Policy = "allowed by rule " + d.Rule
		case d != nil:
			r.Policy = "refused: " + d.Reason
		}
	}
	return r
}
