package keyquorum

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// Errors of the signing policy. A refusal by a rule is a
// *policy.RefusedError (errors.Is(err, policy.ErrRefused)); these name what
// went wrong before any rule could decide.
var (
	// ErrNoSigningPolicy means the site was opened without
	// Config.SigningPolicy: it signs nothing, neither its own requests nor
	// sessions other sites propose, until it is restarted with a policy.
	ErrNoSigningPolicy = errors.New("keyquorum: this site has no signing policy (set Config.SigningPolicy, kqnode run --policy FILE)")
	// ErrNoIntent means a signing session was proposed without the intent
	// it signs for, so this site cannot derive and check its digests.
	ErrNoIntent = errors.New("keyquorum: signing proposal carries no intent")
	// ErrDigestNotInIntent means a signing session asks for a digest that
	// this site does not derive from the intent that came with it.
	ErrDigestNotInIntent = errors.New("keyquorum: digest is not one the intent asks for")
	// ErrOperationNotEnabled means another site proposed an operation this
	// node does not run (the engine's threshold Schnorr sessions, which
	// have no intent or policy path in a node yet).
	ErrOperationNotEnabled = errors.New("keyquorum: operation not enabled on this node")
)

// Store record of the velocity record (sealed like every record).
const idVelocity = "velocity"

// LoadSigningPolicy reads and checks a policy file (policy/FORMAT.md) for
// Config.SigningPolicy. A file that does not parse or type-check gives a
// *policy.FileError naming the line and column.
func LoadSigningPolicy(path string) (*policy.Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: signing policy: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyquorum: signing policy: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxPolicyFile {
		return nil, fmt.Errorf("keyquorum: signing policy %s: %w: not a regular file of at most %d bytes", path, policy.ErrPolicyFile, maxPolicyFile)
	}
	src := make([]byte, st.Size())
	if _, err := f.ReadAt(src, 0); err != nil {
		return nil, fmt.Errorf("keyquorum: signing policy %s: %w", path, err)
	}
	p, err := policy.Parse(path, src)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: signing policy: %w", err)
	}
	return p, nil
}

// maxPolicyFile bounds a policy file LoadSigningPolicy reads.
const maxPolicyFile = 1 << 20

// signEvidence is what travels in a signing proposal's Evidence: the
// intent, the approvals and the caller's own evidence for its tss.Policy.
// Every site derives the digests from the intent itself.
type signEvidence struct {
	intent    []byte
	approvals []byte
	user      []byte
}

// signEvidenceMagic opens the encoding: magic, then three u32-length
// prefixed fields (intent, approvals, user evidence).
const signEvidenceMagic = "keyquorum/sign-evidence/v1\x00"

func (e signEvidence) encode() []byte {
	b := make([]byte, 0, len(signEvidenceMagic)+12+len(e.intent)+len(e.approvals)+len(e.user))
	b = append(b, signEvidenceMagic...)
	for _, f := range [][]byte{e.intent, e.approvals, e.user} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func decodeSignEvidence(b []byte) (signEvidence, error) {
	var e signEvidence
	if len(b) < len(signEvidenceMagic) || string(b[:len(signEvidenceMagic)]) != signEvidenceMagic {
		return e, ErrNoIntent
	}
	b = b[len(signEvidenceMagic):]
	fields := make([][]byte, 3)
	for i := range fields {
		if len(b) < 4 {
			return e, fmt.Errorf("%w: truncated evidence", ErrNoIntent)
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return e, fmt.Errorf("%w: evidence field %d overruns the evidence", ErrNoIntent, i)
		}
		fields[i], b = b[:n], b[n:]
	}
	if len(b) != 0 {
		return e, fmt.Errorf("%w: %d bytes after the evidence", ErrNoIntent, len(b))
	}
	e.intent, e.approvals, e.user = fields[0], fields[1], fields[2]
	if len(e.intent) == 0 {
		return e, ErrNoIntent
	}
	return e, nil
}

// signPolicy is a site's signing policy with what evaluating it needs.
type signPolicy struct {
	pol      *policy.Policy
	velocity *policy.Velocity
	now      func() time.Time
}

// loadVelocity reads the site's velocity record, or starts an empty one.
func (n *Node) loadVelocity(ctx context.Context, retention time.Duration) (*policy.Velocity, error) {
	v, err := policy.NewVelocity(retention)
	if err != nil {
		return nil, fmt.Errorf("%w: VelocityRetention: %w", ErrInvalidConfig, err)
	}
	b, _, err := n.store.Get(ctx, kindNode, idVelocity)
	if errors.Is(err, fs.ErrNotExist) {
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyquorum: read the velocity record: %w", err)
	}
	defer clear(b)
	if err := v.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("keyquorum: read the velocity record: %w", err)
	}
	return v, nil
}

// authorization is what the site checked for one signing proposal.
type authorization struct {
	plan     *policy.Plan
	decision *policy.Decision
	user     []byte
}

// authorize checks that a signing session is one this site signs: the
// intent in its evidence parses, every digest it asks for is one the site
// derives from that intent under its own copy of the key, and the site's
// policy allows the intent with the approvals that came with it (recording
// its spends in the velocity record, persisted before it returns). from
// names the proposer for the refusal message.
func (n *Node) authorize(ctx context.Context, from tss.PartyID, session, keyID, path string, digests [][32]byte, evidence []byte) (*authorization, error) {
	a, err := n.authorizeUnrecorded(ctx, from, keyID, path, digests, evidence)
	fields := map[string]string{"initiator": string(from), "session": session, "key_id": keyID, "path": orRoot(path), "digests": hexList(digests)}
	if a != nil {
		fields["intent"] = hex.EncodeToString(a.plan.IntentHash[:])
		fields["summary"] = hex.EncodeToString(a.plan.SummaryHash[:])
		fields["kind"] = string(a.plan.Intent.Kind())
	}
	if err != nil {
		fields["reason"] = truncateField(err.Error())
		n.recordQuiet(auditSignRefuse, fields)
		return nil, err
	}
	fields["rule"] = a.decision.Rule
	fields["approvers"] = strings.Join(a.decision.Counted, ",")
	// The whole intent goes into the sealed detail part; the fields keep
	// its hashes, which anyone holding the log can check.
	detail, err := encodeSignDetail(a)
	if err != nil {
		return nil, err
	}
	defer clear(detail)
	// Durable before this site's share can leave it.
	if err := n.recordDetail(ctx, auditSignAuthorize, fields, detail); err != nil {
		return nil, err
	}
	return a, nil
}

// truncateField bounds a reason for an audit field.
func truncateField(s string) string {
	if len(s) > 1024 {
		return s[:1024]
	}
	return s
}

func (n *Node) authorizeUnrecorded(ctx context.Context, from tss.PartyID, keyID, path string, digests [][32]byte, evidence []byte) (*authorization, error) {
	if err := n.auditHealthy(); err != nil {
		return nil, err
	}
	sp := n.signPol
	if sp == nil {
		return nil, ErrNoSigningPolicy
	}
	ev, err := decodeSignEvidence(evidence)
	if err != nil {
		return nil, fmt.Errorf("session proposed by %s: %w", from, err)
	}
	in, err := policy.ParseIntent(ev.intent)
	if err != nil {
		return nil, fmt.Errorf("intent proposed by %s: %w", from, err)
	}
	plan, err := n.plan(ctx, keyID, in)
	if err != nil {
		return nil, err
	}
	p, err := hd.ParsePath(orRoot(path))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", tss.ErrBadRequest, err)
	}
	for _, d := range digests {
		if !plan.Covers(d, p) {
			return nil, fmt.Errorf("%w: %s proposed digest %x under path %s, which %s intent %x does not ask this key to sign",
				ErrDigestNotInIntent, from, d[:8], orRoot(path), in.Kind(), plan.IntentHash[:8])
		}
	}
	var approvals []policy.Approval
	if len(ev.approvals) > 0 {
		if approvals, err = policy.DecodeApprovals(ev.approvals); err != nil {
			return nil, err
		}
	}
	before := sp.velocity.Len()
	d, err := sp.pol.Authorize(ctx, plan, policy.Input{Now: sp.now(), Approvals: approvals, Velocity: sp.velocity})
	if err != nil {
		return nil, err
	}
	if len(plan.Spends) > 0 || sp.velocity.Len() != before {
		if err := n.saveVelocity(ctx); err != nil {
			return nil, err
		}
	}
	return &authorization{plan: plan, decision: d, user: ev.user}, nil
}

// saveVelocity persists the velocity record sealed, so that a restart
// keeps the site's limits. Saves are serialized so that an older record
// never overwrites a newer one.
func (n *Node) saveVelocity(ctx context.Context) error {
	n.velocityMu.Lock()
	defer n.velocityMu.Unlock()
	b, err := n.signPol.velocity.MarshalBinary()
	if err != nil {
		return fmt.Errorf("keyquorum: encode the velocity record: %w", err)
	}
	if err := n.store.Put(ctx, kindNode, idVelocity, 1, b); err != nil {
		return fmt.Errorf("keyquorum: save the velocity record (the spend is not signed): %w", err)
	}
	return nil
}

// checkProposal is the signing-policy part of the engine's Policy hook:
// a signing session another site proposes is joined only when authorize
// accepts it. This site's own sessions were authorized by the call that
// proposed them.
//
// It names the operations a node joins and refuses every other: an
// operation the engine knows but the node has no intent, policy or audit
// path for (threshold Schnorr keygen and signing, for now) is never run
// on another site's word.
func (n *Node) checkProposal(ctx context.Context, p *tss.Proposal) (*tss.Proposal, error) {
	if p.Initiator == n.party && n.proposeUnchecked.Load() {
		return p, nil
	}
	switch p.Op {
	case tss.OpKeygen, tss.OpReshare, tss.OpCommit, tss.OpPresign, tss.OpReconcile:
		return p, nil
	case tss.OpSign, tss.OpOnline:
	default:
		return nil, fmt.Errorf("%w: %s sessions are not enabled on a keyquorum node: it has no intent, policy or audit path for them", ErrOperationNotEnabled, p.Op)
	}
	if p.Epoch != 0 {
		// A pending share's confirmation of a reshare, which checkReshare
		// has bound to its confirmation digest; no intent comes with it.
		return p, nil
	}
	if p.Initiator == n.party {
		ev, err := decodeSignEvidence(p.Evidence)
		if err != nil {
			return nil, err
		}
		q := *p
		q.Evidence = ev.user
		return &q, nil
	}
	digests, err := p.SigningDigests()
	if err != nil {
		return nil, err
	}
	sid := p.SessionID()
	a, err := n.authorize(ctx, p.Initiator, hex.EncodeToString(sid[:]), p.KeyID, p.Path, digests, p.Evidence)
	if err != nil {
		n.log.Warn("signing session refused", "initiator", string(p.Initiator), "key", p.KeyID, "op", string(p.Op), "err", err.Error())
		return nil, err
	}
	n.log.Info("signing session authorized", "initiator", string(p.Initiator), "key", p.KeyID, "op", string(p.Op),
		"intent", fmt.Sprintf("%x", a.plan.IntentHash[:8]), "rule", a.decision.Rule, "approvers", fmt.Sprint(a.decision.Counted))
	q := *p
	q.Evidence = a.user
	return &q, nil
}

// PlanRequest asks what an intent would sign with a key.
type PlanRequest struct {
	// KeyID names the key.
	KeyID string
	// Intent is the request's payload.
	Intent *policy.Intent
}

// Plan derives, with this site's own copy of the key, every digest the
// intent asks the key to sign, the summary people approve, and the value
// it moves. Approvers sign the plan's Statement. Every other site derives
// the same plan itself before it joins.
func (n *Node) Plan(ctx context.Context, req PlanRequest) (*policy.Plan, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	if req.Intent == nil {
		return nil, fmt.Errorf("keyquorum: plan: %w: no intent", tss.ErrBadRequest)
	}
	plan, err := n.plan(ctx, req.KeyID, req.Intent)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: plan with key %q: %w", req.KeyID, err)
	}
	return plan, nil
}

// plan derives in's plan for this site's copy of key keyID.
func (n *Node) plan(ctx context.Context, keyID string, in *policy.Intent) (*policy.Plan, error) {
	info, err := n.eng.Key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	committee := make([]string, len(info.Parties))
	for i, p := range info.Parties {
		committee[i] = string(p)
	}
	slices.Sort(committee)
	return n.keyCache.Derive(ctx, in, policy.Key{ID: info.ID, PublicKey: info.PublicKey, ChainCode: info.ChainCode, Committee: committee})
}

// Evaluate evaluates this site's signing policy for an intent with the
// given approvals, without signing and without recording anything: the
// decision names the rule and what is missing. It fails with
// ErrNoSigningPolicy when the site has none.
func (n *Node) Evaluate(ctx context.Context, req PlanRequest, approvals []policy.Approval) (*policy.Plan, *policy.Decision, error) {
	plan, err := n.Plan(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if n.signPol == nil {
		return plan, nil, ErrNoSigningPolicy
	}
	d, err := n.signPol.pol.Evaluate(ctx, plan, policy.Input{Now: n.signPol.now(), Approvals: approvals, Velocity: n.signPol.velocity})
	if err != nil {
		return plan, d, fmt.Errorf("keyquorum: evaluate with key %q: %w", req.KeyID, err)
	}
	return plan, d, nil
}
