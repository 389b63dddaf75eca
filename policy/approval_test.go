package policy_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/keyquorum/keyquorum/policy"
)

// twoOfTreasury is a policy with one rule that needs two treasury
// approvals for anything.
const twoOfTreasury = `keyquorum-policy 1
approval-max-validity 24h
approver alice KEY_alice
approver bob KEY_bob
approver erin KEY_erin
group treasury alice bob erin
rule two-of-treasury allow treasury=2
  true
`

// fillKeys replaces KEY_<name> with the approvers' public keys.
func fillKeys(src string, keys map[string]approverKey) string {
	for name, k := range keys {
		src = strings.ReplaceAll(src, "KEY_"+name, k.pubLine())
	}
	return src
}

func TestApproval_SSHKeygenSignaturesVerify(t *testing.T) {
	keys := map[string]approverKey{
		"alice": newKeygenKey(t, "ed25519", "alice@test"),
		"bob":   newKeygenKey(t, "ecdsa", "bob@test"),
		"erin":  newKeygenKey(t, "ed25519", "erin@test"),
	}
	keys["erin"].(*keygenKey).hashAlg = "sha256"
	pol := mustParse(t, "two", fillKeys(twoOfTreasury, keys))
	k := newTestKey(t, "approval")
	plan := derive(t, psbtIntent(t, k, []int64{50_000_000, 20_000_000}, []out{{outsideBTC, 60_000_000}, {"", 9_990_000}}), k)
	st := plan.Statement(testNow.Add(2 * time.Hour)).Text()
	for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "erin"}, {"erin", "alice"}} {
		as := []policy.Approval{keys[pair[0]].approve(t, st), keys[pair[1]].approve(t, st)}
		d, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Approvals: as})
		if err != nil || !d.Allowed || len(d.Counted) != 2 {
			t.Fatalf("%v approved: %v (%v)", pair, err, d)
		}
	}
}

// TestApproval_StatementsVerifyWithSSHKeygen checks that statements, and
// approvals made with SignStatement, are what ssh-keygen -Y verify accepts.
func TestApproval_StatementsVerifyWithSSHKeygen(t *testing.T) {
	k := newTestKey(t, "approval")
	plan := derive(t, messageIntent(t, "hello"), k)
	st := plan.Statement(testNow.Add(time.Hour)).Text()

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := policy.SignStatement(rand.Reader, signer, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := sshVerify(t, string(ssh.MarshalAuthorizedKey(signer.PublicKey())), *a); err != nil {
		t.Fatalf("ssh-keygen rejects SignStatement's approval: %v", err)
	}
	for _, typ := range []string{ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256} {
		f := newFIDOKey(t, typ, "fido@test")
		if err := sshVerify(t, f.pubLine(), f.approve(t, st)); err != nil {
			t.Fatalf("ssh-keygen rejects a %s approval: %v", typ, err)
		}
	}
	kg := newKeygenKey(t, "ecdsa", "bob@test")
	if err := sshVerify(t, kg.pubLine(), kg.approve(t, st)); err != nil {
		t.Fatal(err)
	}
	// And ssh-keygen refuses what is not an approval of this statement.
	other := kg.approve(t, plan.Statement(testNow.Add(2*time.Hour)).Text())
	other.Statement = st
	if sshVerify(t, kg.pubLine(), other) == nil {
		t.Fatal("ssh-keygen accepts a signature of another statement")
	}
}

func TestStatement_TextIsCanonical(t *testing.T) {
	k := newTestKey(t, "approval")
	plan := derive(t, messageIntent(t, "hello"), k)
	st := plan.Statement(time.Date(2026, 12, 5, 17, 0, 0, 999, time.FixedZone("CET", 3600)))
	text := string(st.Text())
	want := "keyquorum-approval v1\nintent " + hexOf(plan.IntentHash[:]) + "\nsummary " + hexOf(plan.SummaryHash[:]) +
		"\nkey " + k.key.ID + "\ncommittee 12D3KooWsiteA 12D3KooWsiteB 12D3KooWsiteC\nexpires 2026-12-05T16:00:00Z\n"
	if text != want {
		t.Fatalf("statement\n%s\nwant\n%s", text, want)
	}
	back, err := policy.ParseStatement([]byte(text))
	if err != nil || back.IntentHash != plan.IntentHash || !back.Expires.Equal(st.Expires) {
		t.Fatalf("parse: %v", err)
	}
	bad := map[string]string{
		"CRLF":             strings.ReplaceAll(text, "\n", "\r\n"),
		"no final newline": strings.TrimSuffix(text, "\n"),
		"upper-case hex":   strings.Replace(text, "intent "+hexOf(plan.IntentHash[:]), "intent "+strings.ToUpper(hexOf(plan.IntentHash[:])), 1),
		"time offset":      strings.Replace(text, "16:00:00Z", "17:00:00+01:00", 1),
		"double space":     strings.Replace(text, "key ", "key  ", 1),
		"extra line":       text + "comment\n",
		"lines swapped":    strings.Replace(strings.Replace(text, "intent ", "summary_", 1), "summary ", "intent ", 1),
		"other header":     strings.Replace(text, "v1", "v2", 1),
		"short hash":       strings.Replace(text, "intent "+hexOf(plan.IntentHash[:]), "intent "+hexOf(plan.IntentHash[:31]), 1),
	}
	for name, s := range bad {
		if _, err := policy.ParseStatement([]byte(s)); !errors.Is(err, policy.ErrApprovalMalformed) {
			t.Errorf("%s: err = %v, want ErrApprovalMalformed", name, err)
		}
	}
}

// TestApproval_MaliciousApprovalsAreRejected is the table of attacks on
// approvals: each approval below must not count, and the error must say
// which check caught it.
func TestApproval_MaliciousApprovalsAreRejected(t *testing.T) {
	keys := map[string]approverKey{
		"alice": newKeygenKey(t, "ed25519", "alice@test"),
		"bob":   newKeygenKey(t, "ecdsa", "bob@test"),
		"erin":  newFIDOKey(t, ssh.KeyAlgoSKED25519, "erin@test"),
	}
	pol := mustParse(t, "two", fillKeys(twoOfTreasury, keys))
	mallory := newKeygenKey(t, "ed25519", "mallory@test")
	k := newTestKey(t, "approval")
	ins := []int64{50_000_000, 20_000_000}
	plan := derive(t, psbtIntent(t, k, ins, []out{{coldBTC, 60_000_000}, {"", 9_990_000}}), k)
	// The same inputs, with the payment redirected: a new intent.
	changed := derive(t, psbtIntent(t, k, ins, []out{{outsideBTC, 60_000_000}, {"", 9_990_000}}), k)
	exp := testNow.Add(time.Hour)
	good := plan.Statement(exp)
	text := func(s *policy.Statement) []byte { return s.Text() }
	alter := func(change func(*policy.Statement)) []byte {
		s := *good
		change(&s)
		return s.Text()
	}
	bobGood := keys["bob"].approve(t, good.Text())

	cases := []struct {
		name     string
		approval policy.Approval
		plan     *policy.Plan
		want     error
	}{
		{"approval of another intent", keys["alice"].approve(t, text(changed.Statement(exp))), plan, policy.ErrApprovalOtherIntent},
		{"PSBT with a changed output under an old approval", keys["alice"].approve(t, good.Text()), changed, policy.ErrApprovalOtherIntent},
		{"another summary", keys["alice"].approve(t, alter(func(s *policy.Statement) { s.SummaryHash[0] ^= 1 })), plan, policy.ErrApprovalOtherSummary},
		{"another key", keys["alice"].approve(t, alter(func(s *policy.Statement) { s.KeyID = "otherkey" })), plan, policy.ErrApprovalOtherKey},
		{"another committee", keys["alice"].approve(t, alter(func(s *policy.Statement) { s.Committee = []string{"12D3KooWsiteA", "12D3KooWsiteB"} })), plan, policy.ErrApprovalOtherCommittee},
		{"expired", keys["alice"].approve(t, alter(func(s *policy.Statement) { s.Expires = testNow.Add(-time.Second) })), plan, policy.ErrApprovalExpired},
		{"expires exactly now", keys["alice"].approve(t, alter(func(s *policy.Statement) { s.Expires = testNow })), plan, policy.ErrApprovalExpired},
		{"valid for longer than the policy allows", keys["alice"].approve(t, alter(func(s *policy.Statement) { s.Expires = testNow.Add(25 * time.Hour) })), plan, policy.ErrApprovalTooLong},
		{"key not in the policy", mallory.approve(t, good.Text()), plan, policy.ErrApprovalUnknownKey},
		{"wrong namespace", keys["alice"].(*keygenKey).sign(t, good.Text(), "file"), plan, policy.ErrApprovalNamespace},
		{"bad signature", tamperSignature(t, keys["alice"].approve(t, good.Text())), plan, policy.ErrApprovalSignature},
		{"statement changed after signing", policy.Approval{Statement: alter(func(s *policy.Statement) { s.Expires = exp.Add(time.Minute) }), Signature: keys["alice"].approve(t, good.Text()).Signature}, plan, policy.ErrApprovalSignature},
		{"mallory's signature labelled with alice's key", relabel(t, mallory.approve(t, good.Text()), keys["alice"]), plan, policy.ErrApprovalSignature},
		{"security key not touched", untouched(t, keys["erin"].(*fidoKey), good.Text()), plan, policy.ErrApprovalSignature},
		{"unsupported hash", rehash(t, keys["alice"].approve(t, good.Text()), "md5"), plan, policy.ErrApprovalHashAlg},
		{"statement not canonical", keys["alice"].approve(t, bytes.ReplaceAll(good.Text(), []byte("\n"), []byte("\r\n"))), plan, policy.ErrApprovalMalformed},
		{"not an SSH signature", policy.Approval{Statement: good.Text(), Signature: []byte("-----BEGIN PGP SIGNATURE-----\n-----END PGP SIGNATURE-----\n")}, plan, policy.ErrApprovalMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// With bob's good approval, the bad one would make two.
			d, err := pol.Evaluate(context.Background(), c.plan, policy.Input{Now: testNow, Approvals: []policy.Approval{bobGood, c.approval}})
			if d == nil || d.Allowed || !errors.Is(err, policy.ErrApprovalsMissing) {
				t.Fatalf("decision %v, err %v; want a refusal for missing approvals", d, err)
			}
			var found *policy.ApprovalError
			for _, r := range d.Rejected {
				if r.Index == 1 {
					found = r
				}
			}
			if found == nil || !errors.Is(found, c.want) || !errors.Is(found, policy.ErrApproval) {
				t.Fatalf("rejected %v; want approval 1 rejected with %v", d.Rejected, c.want)
			}
			if c.plan == plan && (len(d.Approvers) != 1 || d.Approvers[0] != "bob") {
				t.Fatalf("verified approvers %v, want [bob]", d.Approvers)
			}
			if !strings.Contains(err.Error(), "approval 1") {
				t.Fatalf("refusal %q does not name the rejected approval", err)
			}
		})
	}
}

func TestApproval_EachApproverCountsOnce(t *testing.T) {
	alice, alice2, bob := newKeygenKey(t, "ed25519", "alice@laptop"), newKeygenKey(t, "ecdsa", "alice@phone"), newKeygenKey(t, "ed25519", "bob@test")
	src := "keyquorum-policy 1\napprover alice " + alice.pubLine() + "\napprover alice " + alice2.pubLine() +
		"\napprover bob " + bob.pubLine() + "\ngroup treasury alice bob\nrule two allow treasury=2\n  true\n"
	pol := mustParse(t, "once", src)
	k := newTestKey(t, "approval")
	plan := derive(t, messageIntent(t, "hello"), k)
	st := plan.Statement(testNow.Add(time.Hour)).Text()
	for name, as := range map[string][]policy.Approval{
		"same key twice":  {alice.approve(t, st), alice.approve(t, st)},
		"two keys of one": {alice.approve(t, st), alice2.approve(t, st)},
		"same bytes":      {alice.approve(t, st), alice.approve(t, st)},
	} {
		if name == "same bytes" {
			as[1] = as[0]
		}
		d, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Approvals: as})
		if !errors.Is(err, policy.ErrApprovalsMissing) || len(d.Rejected) != 1 || !errors.Is(d.Rejected[0], policy.ErrApprovalDuplicate) {
			t.Fatalf("%s: %v, rejected %v", name, err, d.Rejected)
		}
	}
	d, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Approvals: []policy.Approval{alice2.approve(t, st), bob.approve(t, st)}})
	if err != nil || !d.Allowed {
		t.Fatalf("alice and bob: %v", err)
	}
}

// TestApproval_OneApproverDoesNotFillTwoGroups: bob is in both groups; a
// rule needing one of each must not be satisfied by bob alone.
func TestApproval_OneApproverDoesNotFillTwoGroups(t *testing.T) {
	alice, bob, carol := newKeygenKey(t, "ed25519", "a"), newKeygenKey(t, "ed25519", "b"), newKeygenKey(t, "ed25519", "c")
	src := "keyquorum-policy 1\napprover alice " + alice.pubLine() + "\napprover bob " + bob.pubLine() + "\napprover carol " + carol.pubLine() +
		"\ngroup ops alice bob\ngroup risk bob carol\nrule both allow ops=1 risk=1\n  approvals.ops >= 1 && approvals.risk >= 1\n"
	pol := mustParse(t, "overlap", src)
	k := newTestKey(t, "approval")
	plan := derive(t, messageIntent(t, "hello"), k)
	st := plan.Statement(testNow.Add(time.Hour)).Text()
	d, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Approvals: []policy.Approval{bob.approve(t, st)}})
	if !errors.Is(err, policy.ErrApprovalsMissing) || d.Rule != "both" {
		t.Fatalf("bob alone: %v", err)
	}
	// bob can fill either slot: with alice he is risk, with carol he is ops.
	for _, other := range []*keygenKey{alice, carol} {
		d, err = pol.Evaluate(context.Background(), plan, policy.Input{Now: testNow, Approvals: []policy.Approval{bob.approve(t, st), other.approve(t, st)}})
		if err != nil || len(d.Counted) != 2 {
			t.Fatalf("bob and another: %v (%v)", err, d)
		}
	}
}

func TestEvidence_RoundTripAndBounds(t *testing.T) {
	as := []policy.Approval{{Statement: []byte("a\n"), Signature: []byte("sig")}, {Statement: []byte("b\n"), Signature: []byte("sig2")}}
	enc, err := policy.EncodeApprovals(as)
	if err != nil {
		t.Fatal(err)
	}
	back, err := policy.DecodeApprovals(enc)
	if err != nil || len(back) != 2 || string(back[1].Statement) != "b\n" || string(back[0].Signature) != "sig" {
		t.Fatalf("round trip: %v %v", back, err)
	}
	if none, err := policy.DecodeApprovals(nil); err != nil || none != nil {
		t.Fatalf("empty evidence: %v", err)
	}
	for name, b := range map[string]string{
		"version 2":      `{"version":2,"approvals":[]}`,
		"unknown field":  `{"version":1,"approvals":[],"extra":1}`,
		"trailing data":  `{"version":1,"approvals":[]} {}`,
		"not JSON":       `[`,
		"too many":       `{"version":1,"approvals":[` + strings.Repeat(`{"statement":"","signature":""},`, policy.MaxApprovals) + `{"statement":"","signature":""}]}`,
		"huge statement": `{"version":1,"approvals":[{"statement":"` + strings.Repeat("x", policy.MaxStatementSize+1) + `","signature":""}]}`,
	} {
		if _, err := policy.DecodeApprovals([]byte(b)); !errors.Is(err, policy.ErrApprovalMalformed) {
			t.Errorf("%s: err = %v, want ErrApprovalMalformed", name, err)
		}
	}
	if _, err := policy.EncodeApprovals(make([]policy.Approval, policy.MaxApprovals+1)); !errors.Is(err, policy.ErrApprovalMalformed) {
		t.Fatalf("encoding too many: %v", err)
	}
}

// sshsigBlob is the SSHSIG envelope after its magic (PROTOCOL.sshsig).
type sshsigBlob struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  []byte
	HashAlg   string
	Signature []byte
}

func openSig(t testing.TB, armored []byte) *sshsigBlob {
	t.Helper()
	block, _ := pem.Decode(armored)
	if block == nil {
		t.Fatal("no PEM block")
	}
	var b sshsigBlob
	if err := ssh.Unmarshal(block.Bytes[6:], &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func sealSig(b *sshsigBlob) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "SSH SIGNATURE", Bytes: append([]byte("SSHSIG"), ssh.Marshal(b)...)})
}

// tamperSignature flips a bit of the signature value itself.
func tamperSignature(t testing.TB, a policy.Approval) policy.Approval {
	b := openSig(t, a.Signature)
	var s ssh.Signature
	if err := ssh.Unmarshal(b.Signature, &s); err != nil {
		t.Fatal(err)
	}
	s.Blob[len(s.Blob)/2] ^= 0x10
	b.Signature = ssh.Marshal(&s)
	return policy.Approval{Statement: a.Statement, Signature: sealSig(b)}
}

// relabel puts another approver's public key into the envelope of a valid
// signature, so that a verifier that trusted the embedded key, or looked
// it up without verifying with it, would credit that approver.
func relabel(t testing.TB, a policy.Approval, as approverKey) policy.Approval {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(as.pubLine()))
	if err != nil {
		t.Fatal(err)
	}
	b := openSig(t, a.Signature)
	b.PublicKey = pub.Marshal()
	return policy.Approval{Statement: a.Statement, Signature: sealSig(b)}
}

// rehash relabels the hash algorithm.
func rehash(t testing.TB, a policy.Approval, alg string) policy.Approval {
	b := openSig(t, a.Signature)
	b.HashAlg = alg
	return policy.Approval{Statement: a.Statement, Signature: sealSig(b)}
}

// untouched signs with the security key reporting no user presence.
func untouched(t testing.TB, k *fidoKey, statement []byte) policy.Approval {
	saved := k.flags
	k.flags = 0
	defer func() { k.flags = saved }()
	return k.approve(t, statement)
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

var updateVectors = flag.Bool("update", false, "rewrite the recorded security-key vectors in testdata/sk")

// skVectorPlan is the plan the recorded vectors approve.
func skVectorPlan(t testing.TB) *policy.Plan {
	k := newTestKey(t, "sk vectors")
	in, err := policy.NewPersonalMessageIntent(mustPath(t, "m/44/60"), []byte("keyquorum security key vector"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Derive(context.Background(), in, k.key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// skVectorNow is the clock the vectors are checked at; they expire an
// hour later.
var skVectorNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// TestApproval_RecordedSecurityKeyVectors verifies recorded approvals made
// by sk-ssh-ed25519 and sk-ecdsa-sha2-nistp256 keys (PROTOCOL.u2f layout,
// testdata/sk/README.md says how they were made), and refuses the recorded
// signature whose authenticator reported no user presence. ssh-keygen
// accepts all of them, including the untouched one; we do not.
func TestApproval_RecordedSecurityKeyVectors(t *testing.T) {
	dir := filepath.Join("testdata", "sk")
	plan := skVectorPlan(t)
	if *updateVectors {
		writeSKVectors(t, dir, plan)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	statement := read("statement")
	if !bytes.Equal(statement, plan.Statement(skVectorNow.Add(time.Hour)).Text()) {
		t.Fatal("testdata/sk/statement no longer matches the plan (intent or summary encoding changed?)")
	}
	src := "keyquorum-policy 1\napprover carol " + strings.TrimSpace(string(read("ed25519.pub"))) +
		"\napprover dave " + strings.TrimSpace(string(read("ecdsa.pub"))) + "\ngroup risk carol dave\nrule r allow risk=2\n  true\n"
	pol := mustParse(t, "sk", src)
	as := []policy.Approval{{Statement: statement, Signature: read("ed25519.sig")}, {Statement: statement, Signature: read("ecdsa.sig")}}
	d, err := pol.Evaluate(context.Background(), plan, policy.Input{Now: skVectorNow, Approvals: as})
	if err != nil || !d.Allowed {
		t.Fatalf("recorded sk approvals: %v", err)
	}
	untouched := policy.Approval{Statement: statement, Signature: read("ed25519-untouched.sig")}
	d, err = pol.Evaluate(context.Background(), plan, policy.Input{Now: skVectorNow, Approvals: []policy.Approval{as[1], untouched}})
	if !errors.Is(err, policy.ErrApprovalsMissing) || len(d.Rejected) != 1 || !errors.Is(d.Rejected[0], policy.ErrApprovalSignature) {
		t.Fatalf("untouched: %v %v", err, d.Rejected)
	}
	for _, a := range []struct{ pub, sig string }{{"ed25519.pub", "ed25519.sig"}, {"ecdsa.pub", "ecdsa.sig"}, {"ed25519.pub", "ed25519-untouched.sig"}} {
		if err := sshVerify(t, string(read(a.pub)), policy.Approval{Statement: statement, Signature: read(a.sig)}); err != nil {
			t.Fatalf("ssh-keygen rejects %s: %v", a.sig, err)
		}
	}
}

// writeSKVectors records the vectors with deterministic software FIDO keys.
func writeSKVectors(t testing.TB, dir string, plan *policy.Plan) {
	statement := plan.Statement(skVectorNow.Add(time.Hour)).Text()
	ed := fidoKeyFromSeed(t, ssh.KeyAlgoSKED25519, "carol@risk")
	ec := fidoKeyFromSeed(t, ssh.KeyAlgoSKECDSA256, "dave@risk")
	files := map[string][]byte{
		"statement":             statement,
		"ed25519.pub":           []byte(ed.pubLine() + "\n"),
		"ecdsa.pub":             []byte(ec.pubLine() + "\n"),
		"ed25519.sig":           ed.approve(t, statement).Signature,
		"ecdsa.sig":             ec.approve(t, statement).Signature,
		"ed25519-untouched.sig": untouched(t, ed, statement).Signature,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzVerifyApproval(f *testing.F) {
	k := newTestKey(f, "fuzz")
	plan := derive(f, messageIntent(f, "hello"), k)
	st := plan.Statement(testNow.Add(time.Hour)).Text()
	signers := []approverKey{newBenchSigner(f, "ed25519"), newBenchSigner(f, "sk-ecdsa")}
	src := "keyquorum-policy 1\n"
	for i, s := range signers {
		src += "approver a" + itoa(i) + " " + s.pubLine() + "\n"
		a := s.approve(f, st)
		f.Add(a.Statement, a.Signature)
	}
	pol := mustParse(f, "fuzz", src)
	f.Fuzz(func(t *testing.T, statement, signature []byte) {
		ok, rejected := pol.VerifyApprovals(plan, []policy.Approval{{Statement: statement, Signature: signature}}, testNow)
		if len(ok)+len(rejected) != 1 {
			t.Fatalf("%d verified and %d rejected of one approval", len(ok), len(rejected))
		}
		if len(ok) == 1 && !bytes.Equal(statement, st) {
			t.Fatal("verified an approval of another statement")
		}
	})
}
