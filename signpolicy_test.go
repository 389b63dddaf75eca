package keyquorum_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/ssh"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/audit"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// approver is a person with an SSH key.
type approver struct {
	name   string
	signer ssh.Signer
}

func newApprover(t testing.TB, name string) approver {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return approver{name: name, signer: s}
}

func (a approver) line() string {
	return fmt.Sprintf("approver %s %s", a.name, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.signer.PublicKey()))))
}

// approve signs the statement of plan, valid until expires.
func (a approver) approve(t testing.TB, plan *policy.Plan, expires time.Time) policy.Approval {
	t.Helper()
	ap, err := policy.SignStatement(rand.Reader, a.signer, plan.Statement(expires).Text())
	if err != nil {
		t.Fatal(err)
	}
	return *ap
}

func encodeApprovals(t testing.TB, as ...policy.Approval) []byte {
	t.Helper()
	b, err := policy.EncodeApprovals(as)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignPolicy_EverySiteChecksWhatItSigns plays a compromised site that
// proposes signing sessions to an honest one, with its own engine and
// without its own checks. The honest site derives the digests from the
// intent itself, evaluates its own policy and verifies every approval, and
// refuses each attack, naming the reason; nothing is signed. The same
// requests made honestly are signed (so the refusals are the checks, not
// a broken set-up).
func TestSignPolicy_EverySiteChecksWhatItSigns(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen between three sites takes tens of seconds")
	}
	alice, bob, mallory := newApprover(t, "alice"), newApprover(t, "bob"), newApprover(t, "mallory")
	honest, err := policy.Parse("honest", []byte(strings.Join([]string{
		"keyquorum-policy 1",
		"approval-max-validity 24h",
		alice.line(), bob.line(),
		"group treasury alice bob",
		"rule psbt allow treasury=2",
		`  kind == "bitcoin-psbt" && velocity.spent("btc:regtest", duration("24h")) <= 1500000`,
		"",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}

	sites := newSites(t, 3)
	a, b, c := sites[0], sites[1], sites[2]
	b.cfg.SigningPolicy = honest
	c.cfg.SigningPolicy = nil // a site without a policy signs nothing
	for _, s := range sites {
		s.start(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	key, err := a.node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(a, b, c), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	root, err := secp256k1.ParsePubKey(key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ab := ids(a, b)

	net := &chaincfg.RegressionNetParams
	packet, _ := testPSBT(t, root, net)
	psbtIntent := func(t *testing.T, change func(*wire.MsgTx)) (*policy.Intent, *policy.Plan) {
		t.Helper()
		p := packet
		if change != nil {
			var buf bytes.Buffer
			if err := packet.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			q, err := wallet.ParsePSBT(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			change(q.UnsignedTx)
			p = q
		}
		var buf bytes.Buffer
		if err := p.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		in, err := policy.NewPSBTIntent("regtest", buf.Bytes(), hd.Path{})
		if err != nil {
			t.Fatal(err)
		}
		plan, err := a.node.Plan(ctx, keyquorum.PlanRequest{KeyID: key.ID, Intent: in})
		if err != nil {
			t.Fatal(err)
		}
		return in, plan
	}
	in, plan := psbtIntent(t, nil)
	later := time.Now().Add(time.Hour)
	good := encodeApprovals(t, alice.approve(t, plan, later), bob.approve(t, plan, later))
	sighash := plan.Digests[0].Digest

	// A compromised a proposes straight through its engine.
	eng := keyquorum.CompromisedEngine(a.node)
	attack := func(t *testing.T, signers []tss.PartyID, digest [32]byte, evidence []byte, want ...string) {
		t.Helper()
		sig, err := eng.Sign(ctx, tss.SignRequest{KeyID: key.ID, Digest: digest[:], Signers: signers, Evidence: evidence})
		if err == nil {
			t.Fatalf("the honest site signed %x (r %x)", digest[:8], sig.R[:8])
		}
		var refused *tss.RefusedError
		if !errors.As(err, &refused) || refused.Party != signers[1] {
			t.Fatalf("want a refusal by %s, got %v", signers[1], err)
		}
		for _, w := range want {
			if !strings.Contains(refused.Reason, w) {
				t.Errorf("refusal %q does not say %q", refused.Reason, w)
			}
		}
	}

	t.Run("NoIntent", func(t *testing.T) {
		attack(t, ab, sighash, nil, "carries no intent")
	})
	t.Run("DigestNotFromTheIntent", func(t *testing.T) {
		other := sha256.Sum256([]byte("transfer everything to mallory"))
		attack(t, ab, other, keyquorum.SignEvidence(in.Bytes(), good, nil), "not one the intent asks for", string(a.id))
	})
	t.Run("ChangedOutputUnderTheOldApproval", func(t *testing.T) {
		in2, plan2 := psbtIntent(t, func(tx *wire.MsgTx) { tx.TxOut[0].Value -= 500_000 })
		attack(t, ab, plan2.Digests[0].Digest, keyquorum.SignEvidence(in2.Bytes(), good, nil), "approval", "another intent")
	})
	t.Run("ApprovalForAnotherIntent", func(t *testing.T) {
		raw, err := policy.NewRawDigestIntent(hd.Path{}, sha256.Sum256([]byte("something else")))
		if err != nil {
			t.Fatal(err)
		}
		rawPlan, err := a.node.Plan(ctx, keyquorum.PlanRequest{KeyID: key.ID, Intent: raw})
		if err != nil {
			t.Fatal(err)
		}
		forged := encodeApprovals(t, alice.approve(t, rawPlan, later), bob.approve(t, rawPlan, later))
		attack(t, ab, sighash, keyquorum.SignEvidence(in.Bytes(), forged, nil), "another intent")
	})
	t.Run("ExpiredApproval", func(t *testing.T) {
		old := encodeApprovals(t, alice.approve(t, plan, later), bob.approve(t, plan, time.Now().Add(-time.Minute)))
		attack(t, ab, sighash, keyquorum.SignEvidence(in.Bytes(), old, nil), "expired")
	})
	t.Run("OneApproverCountedTwice", func(t *testing.T) {
		twice := encodeApprovals(t, alice.approve(t, plan, later), alice.approve(t, plan, later))
		attack(t, ab, sighash, keyquorum.SignEvidence(in.Bytes(), twice, nil), "already counted")
	})
	t.Run("ApproverNotInThePolicy", func(t *testing.T) {
		stranger := encodeApprovals(t, alice.approve(t, plan, later), mallory.approve(t, plan, later))
		attack(t, ab, sighash, keyquorum.SignEvidence(in.Bytes(), stranger, nil), "not in the policy")
	})
	t.Run("SiteWithoutPolicy", func(t *testing.T) {
		attack(t, ids(a, c), sighash, keyquorum.SignEvidence(in.Bytes(), good, nil), "no signing policy")
	})

	t.Run("HonestSiteRefusesItsOwnRawDigest", func(t *testing.T) {
		_, err := b.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: sighash, SignOptions: keyquorum.SignOptions{Signers: ab}})
		if !errors.Is(err, tss.ErrPolicy) || !errors.Is(err, policy.ErrNoRule) {
			t.Fatalf("raw digest under a policy without a raw-digest rule: %v, want tss.ErrPolicy and policy.ErrNoRule", err)
		}
	})

	t.Run("ApprovedPSBTIsSigned", func(t *testing.T) {
		alicesAndBobs := []policy.Approval{alice.approve(t, plan, later), bob.approve(t, plan, later)}
		res, err := b.node.SignPSBT(ctx, keyquorum.PSBTRequest{KeyID: key.ID, Packet: packet,
			Options:     wallet.PSBTOptions{Net: net, Paths: []hd.Path{{}}},
			SignOptions: keyquorum.SignOptions{Signers: ab, Approvals: alicesAndBobs}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Complete {
			t.Fatal("PSBT not complete")
		}
		// The compromised site's forged-digest attack, with the very same
		// approvals, is still refused after a legitimate signature.
		other := sha256.Sum256([]byte("again"))
		attack(t, ab, other, keyquorum.SignEvidence(in.Bytes(), good, nil), "not one the intent asks for")
	})

	t.Run("VelocitySurvivesARestart", func(t *testing.T) {
		// The approved PSBT above sent 990,000 sat; a second one of
		// 990,000 would pass the 1,500,000 daily limit. b restarts in
		// between: it must still remember the first.
		b.stop(t)
		b.start(t)
		in2, plan2 := psbtIntent(t, func(tx *wire.MsgTx) { tx.LockTime = 7 })
		approved := []policy.Approval{alice.approve(t, plan2, later), bob.approve(t, plan2, later)}
		_, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: plan2.Digests[0].Digest,
			SignOptions: keyquorum.SignOptions{Signers: ab, Intent: in2, Approvals: approved}})
		var refused *tss.RefusedError
		if !errors.As(err, &refused) || refused.Party != b.id || !strings.Contains(refused.Reason, "no rule") {
			t.Fatalf("second withdrawal over the daily limit after a restart: %v, want b's refusal (no rule matches)", err)
		}
	})

	t.Run("OnlineSessionForAnotherDigest", func(t *testing.T) {
		// GG20: presign, then propose the one-round session for a digest
		// the intent does not give.
		if _, err := a.node.Presign(ctx, keyquorum.PresignRequest{KeyID: key.ID, Signers: ab, Count: 1}); err != nil {
			t.Fatal(err)
		}
		other := sha256.Sum256([]byte("online forgery"))
		_, err := eng.SignOnline(ctx, tss.OnlineRequest{KeyID: key.ID, Signers: ab, Digests: [][]byte{other[:]},
			Evidence: keyquorum.SignEvidence(in.Bytes(), good, nil)})
		var refused *tss.RefusedError
		if !errors.As(err, &refused) || refused.Party != b.id || !strings.Contains(refused.Reason, "not one the intent asks for") {
			t.Fatalf("online session for another digest: %v, want a refusal by %s", err, b.id)
		}
	})

	t.Run("AuditLogRecordsEveryDecision", func(t *testing.T) {
		v, err := b.node.AuditVerifier()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.node.AuditLog().Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(ctx, b.node.AuditLog().Dir(), audit.VerifyOptions{Log: v})
		if err != nil || rep.Unsigned != 0 {
			t.Fatalf("b's audit log: %+v, %v", rep, err)
		}
		entries, err := b.node.AuditLog().Tail(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, e := range entries {
			count[e.Type]++
			if e.Type == "sign.authorize" && (e.Fields["rule"] != "psbt" || e.Fields["approvers"] != "alice,bob" || e.Fields["intent"] == "") {
				t.Errorf("authorization entry %s", e.JSON())
			}
		}
		// Every attack above was refused and recorded; the approved PSBT
		// and the restart were recorded too.
		if count["sign.refuse"] < 9 || count["sign.authorize"] < 1 || count["site.start"] < 2 || count["site.stop"] < 1 {
			t.Fatalf("b's audit entries by type: %v", count)
		}
	})

	t.Run("AuthorizationDetailHoldsTheIntent", func(t *testing.T) {
		// b authorized the approved PSBT before its restart: the entry's
		// sealed detail opens (under the previous start's data key) to the
		// whole intent and its summary, whose hashes the fields carry.
		auths := entriesOf(auditEntries(t, ctx, b), "sign.authorize", map[string]string{"intent": hex.EncodeToString(plan.IntentHash[:])})
		if len(auths) == 0 {
			t.Fatal("b recorded no authorization of the approved PSBT")
		}
		e, d, err := b.node.AuditEntry(ctx, auths[0].Seq)
		if err != nil {
			t.Fatal(err)
		}
		if e.Detail == nil {
			t.Fatalf("authorization entry without a detail part: %s", e.JSON())
		}
		var sd keyquorum.SignDetail
		if err := json.Unmarshal(d, &sd); err != nil {
			t.Fatalf("detail %q: %v", d, err)
		}
		if !bytes.Equal(sd.Intent, in.Bytes()) || sd.IntentHash != e.Fields["intent"] || sd.Kind != "bitcoin-psbt" {
			t.Errorf("detail: kind %q, intent hash %s, intent %d bytes; want the approved PSBT intent (%d bytes, %s)",
				sd.Kind, sd.IntentHash, len(sd.Intent), len(in.Bytes()), e.Fields["intent"])
		}
		if !bytes.Equal(sd.Summary, plan.SummaryJSON) || sd.SummaryText != plan.Summary.Text() {
			t.Errorf("detail summary %s / %q; want %s", sd.Summary, sd.SummaryText, plan.SummaryJSON)
		}
		// Other entries carry no detail.
		starts := entriesOf(auditEntries(t, ctx, b), "site.start", nil)
		if _, d, err := b.node.AuditEntry(ctx, starts[0].Seq); err != nil || d != nil {
			t.Errorf("site.start entry: detail %q, %v; want none", d, err)
		}
	})

	t.Run("SiteThatCannotAuditRefuses", func(t *testing.T) {
		// A log that can no longer append (closed here, standing for a
		// full disk or an I/O error): b refuses what it would sign.
		if err := b.node.AuditLog().Close(); err != nil {
			t.Fatal(err)
		}
		alicesAndBobs := []policy.Approval{alice.approve(t, plan, later), bob.approve(t, plan, later)}
		_, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: sighash,
			SignOptions: keyquorum.SignOptions{Signers: ab, Intent: in, Approvals: alicesAndBobs}})
		var refused *tss.RefusedError
		if !errors.As(err, &refused) || refused.Party != b.id || !strings.Contains(refused.Reason, "audit log cannot record") {
			t.Fatalf("signing with a site whose audit log is broken: %v, want its refusal", err)
		}
	})
}
