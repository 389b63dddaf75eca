package keyquorum

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// ErrReshareNotAuthorized means this site refused a reshare another site
// proposed because its own operator had not authorized that reshare (see
// [Node.AuthorizeReshare]); the proposer sees a *tss.RefusedError naming
// this site.
var ErrReshareNotAuthorized = errors.New("keyquorum: reshare not authorized by this site")

// MaxReshareAuthorization is the longest an authorization given with
// [Node.AuthorizeReshare] may stay valid.
const MaxReshareAuthorization = 7 * 24 * time.Hour

// Audit entry types of resharing (see auditlog.go for the others).
const (
	auditReshareAuthorize = "reshare.authorize"
	auditReshareAccept    = "reshare.accept"
	auditReshareRefuse    = "reshare.refuse"
	auditReshareCommit    = "key.reshared"
)

// ReshareRequest asks to move a key to a new committee and/or threshold.
type ReshareRequest struct {
	// KeyID names the key.
	KeyID string
	// NewParties is the new committee; it must include this site. Every
	// member must be in Config.Peers (or be this site).
	NewParties []tss.PartyID
	// NewThreshold is the new M.
	NewThreshold int
	// OldParties are the members of the current committee that take part,
	// at least its threshold of them, this site included. Empty means all.
	OldParties []tss.PartyID
}

// ReshareAuthorization is one site operator's consent to a reshare that
// another site will propose: the key, the new committee and the new
// threshold, until Expires.
type ReshareAuthorization struct {
	// KeyID names the key.
	KeyID string `json:"key_id"`
	// NewParties is the new committee the operator agreed to.
	NewParties []tss.PartyID `json:"new_parties"`
	// NewThreshold is the new M the operator agreed to.
	NewThreshold int `json:"new_threshold"`
	// Expires is when the authorization lapses.
	Expires time.Time `json:"expires"`
}

// ReshareStatus describes a reshare this site authorized, takes part in or
// took part in since the node opened. Status lists them.
type ReshareStatus struct {
	// KeyID names the key.
	KeyID string `json:"key_id"`
	// Phase is "authorized" (consent given, nothing proposed yet),
	// "resharing" (phase 1: the committees make new shares, stored as
	// pending), "confirming" (phase 2: the new committee signs the
	// confirmation digest with the pending shares), "committing" (phase
	// 3: the pending shares become active and the old ones are erased),
	// "committed", or "expired".
	Phase string `json:"phase"`
	// Initiator is the site that proposed the reshare (empty while only
	// authorized).
	Initiator tss.PartyID `json:"initiator,omitempty"`
	// NewParties and NewThreshold are the new committee and M.
	NewParties   []tss.PartyID `json:"new_parties"`
	NewThreshold int           `json:"new_threshold"`
	// PendingEpoch is the epoch of the new shares (0 while only
	// authorized).
	PendingEpoch uint64 `json:"pending_epoch,omitempty"`
	// Expires is when the authorization lapses (zero for reshares this
	// site proposed itself).
	Expires time.Time `json:"expires,omitzero"`
	// Updated is when the phase last changed.
	Updated time.Time `json:"updated"`
}

// reshares is what a Node knows of reshares: its operator's
// authorizations, by key, and the reshares it accepted, by the digest
// their new committee signs to confirm them.
type reshares struct {
	mu     sync.Mutex
	auths  map[string]ReshareAuthorization
	status map[string]*ReshareStatus // by key ID: the latest reshare
	// confirm maps a confirmation digest to the key and pending epoch it
	// confirms: the only digests a pending share may sign.
	confirm map[[32]byte]confirmation
}

type confirmation struct {
	keyID string
	epoch uint64
}

func newReshares() *reshares {
	return &reshares{auths: map[string]ReshareAuthorization{}, status: map[string]*ReshareStatus{},
		confirm: map[[32]byte]confirmation{}}
}

// AuthorizeReshare records this site's operator's consent to a reshare of
// a.KeyID to the committee a.NewParties with threshold a.NewThreshold,
// valid until a.Expires (at most MaxReshareAuthorization from now). Until
// then this site joins such a reshare when another site proposes it, and
// refuses every other reshare of any key that another site proposes
// ([ErrReshareNotAuthorized], naming the proposer in its log and audit
// log): one committee member alone cannot move a key to a committee it
// controls. An authorization replaces an earlier one for the same key,
// lasts until it expires, the reshare commits or the node closes, and is
// recorded in the audit log first.
func (n *Node) AuthorizeReshare(ctx context.Context, a ReshareAuthorization) error {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	a.NewParties = tss.SortParties(a.NewParties)
	if err := n.checkNewCommittee(a.KeyID, a.NewParties, a.NewThreshold); err != nil {
		return fmt.Errorf("keyquorum: authorize reshare: %w", err)
	}
	now := time.Now()
	if !a.Expires.After(now) || a.Expires.Sub(now) > MaxReshareAuthorization {
		return fmt.Errorf("keyquorum: authorize reshare of key %s: %w: the expiry must be in the next %s", a.KeyID, tss.ErrBadRequest, MaxReshareAuthorization)
	}
	a.Expires = a.Expires.UTC().Truncate(time.Second)
	if err := n.record(ctx, auditReshareAuthorize, map[string]string{"key_id": a.KeyID, "parties": parties(a.NewParties),
		"threshold": strconv.Itoa(a.NewThreshold), "expires": a.Expires.Format(time.RFC3339)}); err != nil {
		return err
	}
	r := n.reshares
	r.mu.Lock()
	r.auths[a.KeyID] = a
	r.status[a.KeyID] = &ReshareStatus{KeyID: a.KeyID, Phase: "authorized", NewParties: a.NewParties,
		NewThreshold: a.NewThreshold, Expires: a.Expires, Updated: now.UTC()}
	r.mu.Unlock()
	n.log.Info("reshare authorized", "key", a.KeyID, "parties", parties(a.NewParties), "threshold", a.NewThreshold, "expires", a.Expires)
	return nil
}

// checkNewCommittee checks a new committee's party IDs and threshold
// before anything is proposed or authorized: every member must be a site
// this node can reach.
func (n *Node) checkNewCommittee(keyID string, newc []tss.PartyID, threshold int) error {
	if keyID == "" {
		return fmt.Errorf("%w: no key ID", tss.ErrBadRequest)
	}
	if len(newc) < 2 || len(slices.Compact(slices.Clone(newc))) != len(newc) {
		return fmt.Errorf("%w: the new committee of key %s needs 2 or more distinct parties", tss.ErrBadRequest, keyID)
	}
	if threshold < 2 || threshold > len(newc) {
		return fmt.Errorf("%w: threshold %d-of-%d is not supported; M must be 2 to %d", tss.ErrBadRequest, threshold, len(newc), len(newc))
	}
	known := n.members()
	known[n.party] = true
	for _, p := range newc {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%w: party %q: %w", tss.ErrBadRequest, p, err)
		}
		if !known[p] {
			return fmt.Errorf("%w: new committee member %s is not in this site's peer list nor one of its bundle peers; add it to every site's peers first", tss.ErrNotInCommittee, p)
		}
	}
	return nil
}

// Reshare moves a key to a new committee and/or threshold, keeping its
// public key (and so every address). It runs tss's two phases and the
// commit (see [tss.Engine.Reshare]); every other site must have authorized
// exactly this reshare first ([Node.AuthorizeReshare]), or it refuses and
// the key stays as it was. Status shows the phase on every site while it
// runs. This site must be in both committees.
func (n *Node) Reshare(ctx context.Context, req ReshareRequest) (*tss.KeyInfo, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	newc := tss.SortParties(req.NewParties)
	if err := n.checkNewCommittee(req.KeyID, newc, req.NewThreshold); err != nil {
		return nil, fmt.Errorf("keyquorum: reshare: %w", err)
	}
	if !slices.Contains(newc, n.party) {
		return nil, fmt.Errorf("keyquorum: reshare of key %s: %w: the new committee must include this site (%s), which proposes it", req.KeyID, tss.ErrBadRequest, n.party)
	}
	if err := n.checkSigners(req.OldParties); err != nil {
		return nil, fmt.Errorf("keyquorum: reshare of key %s: %w", req.KeyID, err)
	}
	if err := n.record(ctx, auditReshareAuthorize, map[string]string{"key_id": req.KeyID, "parties": parties(newc),
		"threshold": strconv.Itoa(req.NewThreshold), "proposer": string(n.party)}); err != nil {
		return nil, err
	}
	h := n.ops.start("reshare", req.KeyID, newc)
	h.update("", nil, fmt.Sprintf("to %d-of-%d", req.NewThreshold, len(newc)))
	info, err := n.eng.Reshare(ctx, tss.ReshareRequest{KeyID: req.KeyID, OldParties: req.OldParties, NewParties: newc, NewThreshold: req.NewThreshold})
	h.end(err)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: reshare of key %s to %d-of-%d: %w", req.KeyID, req.NewThreshold, len(newc), err)
	}
	n.log.Info("key reshared", "key", info.ID, "epoch", info.Epoch, "threshold", info.Threshold, "parties", len(info.Parties))
	return info, nil
}

// checkReshare is the resharing part of the engine's Policy hook. A
// reshare this site proposes was asked for by its own caller; one another
// site proposes is joined only when this site's operator authorized that
// key, committee and threshold, and has not expired. A signature with a
// pending share (Epoch set) is allowed only for the confirmation digest
// of a reshare this site accepted, so a pending share never signs
// anything else.
func (n *Node) checkReshare(ctx context.Context, p *tss.Proposal) error {
	r := n.reshares
	switch p.Op {
	case tss.OpReshare:
		digest, epoch, err := tss.ReshareConfirmation(p)
		if err != nil {
			return err
		}
		now := time.Now()
		r.mu.Lock()
		a, ok := r.auths[p.KeyID]
		var why string
		switch {
		case p.Initiator == n.party:
			a = ReshareAuthorization{KeyID: p.KeyID, NewParties: p.NewParties, NewThreshold: p.Threshold}
		case !ok:
			why = "this site's operator has not authorized a reshare of this key"
		case !now.Before(a.Expires):
			why = "this site's authorization expired at " + a.Expires.Format(time.RFC3339)
		case !slices.Equal(a.NewParties, p.NewParties) || a.NewThreshold != p.Threshold:
			why = fmt.Sprintf("this site authorized %d-of-%d with %s, not %d-of-%d with %s",
				a.NewThreshold, len(a.NewParties), parties(a.NewParties), p.Threshold, len(p.NewParties), parties(p.NewParties))
		}
		if why == "" {
			r.confirm[digest] = confirmation{keyID: p.KeyID, epoch: epoch}
			r.status[p.KeyID] = &ReshareStatus{KeyID: p.KeyID, Phase: "resharing", Initiator: p.Initiator,
				NewParties: slices.Clone(p.NewParties), NewThreshold: p.Threshold, PendingEpoch: epoch, Expires: a.Expires, Updated: now.UTC()}
		}
		r.mu.Unlock()
		fields := map[string]string{"key_id": p.KeyID, "initiator": string(p.Initiator), "parties": parties(p.NewParties),
			"threshold": strconv.Itoa(p.Threshold), "epoch": strconv.FormatUint(epoch, 10)}
		if why != "" {
			fields["reason"] = why
			n.recordQuiet(auditReshareRefuse, fields)
			n.log.Warn("reshare refused", "key", p.KeyID, "proposer", string(p.Initiator), "reason", why)
			return fmt.Errorf("%w: %s proposed resharing key %s to %d-of-%d, but %s; its operator must run `kqnode reshare --accept` with that committee and threshold first",
				ErrReshareNotAuthorized, p.Initiator, p.KeyID, p.Threshold, len(p.NewParties), why)
		}
		if err := n.record(ctx, auditReshareAccept, fields); err != nil {
			return err
		}
		n.log.Info("reshare accepted", "key", p.KeyID, "proposer", string(p.Initiator), "epoch", epoch)
		return nil
	case tss.OpSign:
		if p.Epoch == 0 {
			return nil
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		var c confirmation
		ok := len(p.Payload) == 32 && p.Path == ""
		if ok {
			c, ok = r.confirm[[32]byte(p.Payload)]
		}
		if !ok || c.keyID != p.KeyID || c.epoch != p.Epoch {
			return fmt.Errorf("%w: %s proposed signing %s with the epoch-%d share of key %s: a pending share signs only the confirmation of a reshare this site accepted",
				tss.ErrBadRequest, p.Initiator, hex.EncodeToString(p.Payload[:min(len(p.Payload), 32)]), p.Epoch, p.KeyID)
		}
		if s := r.status[p.KeyID]; s != nil && s.PendingEpoch == p.Epoch {
			s.Phase, s.Updated = "confirming", time.Now().UTC()
		}
	case tss.OpCommit:
		r.mu.Lock()
		if s := r.status[p.KeyID]; s != nil && s.PendingEpoch == p.Epoch {
			s.Phase, s.Updated = "committing", time.Now().UTC()
		}
		r.mu.Unlock()
	}
	return nil
}

// reshareCommitted records a commit that completed on this site: the
// authorization is used up and the confirmation digests of the key are
// forgotten.
func (n *Node) reshareCommitted(ctx context.Context, p *tss.Proposal) {
	r := n.reshares
	r.mu.Lock()
	delete(r.auths, p.KeyID)
	for d, c := range r.confirm {
		if c.keyID == p.KeyID && c.epoch <= p.Epoch {
			delete(r.confirm, d)
		}
	}
	if s := r.status[p.KeyID]; s != nil && s.PendingEpoch == p.Epoch {
		s.Phase, s.Updated, s.Expires = "committed", time.Now().UTC(), time.Time{}
	}
	r.mu.Unlock()
	fields := map[string]string{"key_id": p.KeyID, "epoch": strconv.FormatUint(p.Epoch, 10), "initiator": string(p.Initiator)}
	if info, err := n.eng.Key(ctx, p.KeyID); err == nil {
		fields["public_key"] = hex.EncodeToString(info.PublicKey)
		fields["threshold"] = strconv.Itoa(info.Threshold)
		fields["parties"] = parties(info.Parties)
	} else {
		fields["share"] = "erased" // not in the new committee
	}
	n.recordQuiet(auditReshareCommit, fields)
}

// list returns the reshares for Status, by key ID.
func (r *reshares) list() []ReshareStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	out := make([]ReshareStatus, 0, len(r.status))
	for _, s := range r.status {
		c := *s
		if c.Phase == "authorized" && !now.Before(c.Expires) {
			c.Phase = "expired"
		}
		c.NewParties = slices.Clone(c.NewParties)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ReshareStatus) int { return strings.Compare(a.KeyID, b.KeyID) })
	return out
}
