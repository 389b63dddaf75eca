package policy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"
	"golang.org/x/crypto/ssh"

	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/wallet"
)

// benchSigner is an approver key made in Go, for benchmarks that must not
// spawn ssh-keygen.
type benchSigner struct {
	ssh.Signer
}

func (s benchSigner) pubLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

func (s benchSigner) approve(t testing.TB, statement []byte) policy.Approval {
	a, err := policy.SignStatement(rand.Reader, s, statement)
	if err != nil {
		t.Fatal(err)
	}
	return *a
}

func newBenchSigner(b testing.TB, typ string) approverKey {
	switch typ {
	case "ed25519":
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, _ := ssh.NewSignerFromKey(priv)
		return benchSigner{s}
	case "ecdsa":
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s, _ := ssh.NewSignerFromKey(priv)
		return benchSigner{s}
	case "sk-ed25519":
		return newFIDOKey(b, ssh.KeyAlgoSKED25519, "b")
	case "sk-ecdsa":
		return newFIDOKey(b, ssh.KeyAlgoSKECDSA256, "b")
	}
	b.Fatalf("no key type %s", typ)
	return nil
}

// benchTreasury is the example treasury policy with Go-made keys of the
// same types.
func benchTreasury(b *testing.B) (*policy.Policy, map[string]approverKey) {
	src := string(readExample(b, "treasury"))
	keys := map[string]approverKey{}
	var lines []string
	for _, line := range strings.Split(src, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "approver" {
			typ := map[string]string{
				ssh.KeyAlgoED25519: "ed25519", ssh.KeyAlgoECDSA256: "ecdsa",
				ssh.KeyAlgoSKED25519: "sk-ed25519", ssh.KeyAlgoSKECDSA256: "sk-ecdsa",
			}[f[2]]
			keys[f[1]] = newBenchSigner(b, typ)
			line = "approver " + f[1] + " " + keys[f[1]].pubLine()
		}
		lines = append(lines, line)
	}
	return mustParse(b, "treasury", strings.Join(lines, "\n")), keys
}

func BenchmarkParseIntent(b *testing.B) {
	k := newTestKey(b, "bench")
	for name, in := range map[string]*policy.Intent{
		"psbt-2-inputs": psbtIntent(b, k, []int64{50_000_000, 30_000_000}, []out{{coldBTC, 70_000_000}, {"", 9_990_000}}),
		"eip1559":       ethIntent(b, 1, 0, usdc, big.NewInt(0), erc20("transfer(address,uint256)", coldETH, big.NewInt(1e6))),
		"eip712":        typedIntent(b, []byte(permitJSON)),
	} {
		enc := in.Bytes()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := policy.ParseIntent(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDerive(b *testing.B) {
	k := newTestKey(b, "bench")
	inputs := func(n int) []int64 {
		v := make([]int64, n)
		for i := range v {
			v[i] = 1_000_000
		}
		return v
	}
	for name, in := range map[string]*policy.Intent{
		"psbt-2-inputs":  psbtIntent(b, k, inputs(2), []out{{coldBTC, 1_500_000}, {"", 490_000}}),
		"psbt-50-inputs": psbtIntent(b, k, inputs(50), []out{{coldBTC, 40_000_000}, {"", 9_900_000}}),
		"eip1559":        ethIntent(b, 1, 0, usdc, big.NewInt(0), erc20("transfer(address,uint256)", coldETH, big.NewInt(1e6))),
		"eip712":         typedIntent(b, []byte(permitJSON)),
		"message":        messageIntent(b, "Sign in to example.com"),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := policy.Derive(context.Background(), in, k.key); err != nil {
					b.Fatal(err)
				}
			}
		})
		cache := policy.NewKeyCache(0)
		b.Run(name+"-cached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cache.Derive(context.Background(), in, k.key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyApproval measures one approval's verification (envelope,
// key lookup, signature, statement) per key type.
func BenchmarkVerifyApproval(b *testing.B) {
	k := newTestKey(b, "bench")
	plan := derive(b, messageIntent(b, "hello"), k)
	st := plan.Statement(testNow.Add(time.Hour)).Text()
	for _, typ := range []string{"ed25519", "ecdsa", "sk-ed25519", "sk-ecdsa"} {
		key := newBenchSigner(b, typ)
		pol := mustParse(b, "one", "keyquorum-policy 1\napprover a "+key.pubLine()+"\n")
		as := []policy.Approval{key.approve(b, st)}
		b.Run(typ, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ok, rej := pol.VerifyApprovals(plan, as, testNow); len(ok) != 1 || len(rej) != 0 {
					b.Fatal(rej)
				}
			}
		})
	}
}

// BenchmarkEvaluate measures rule evaluation with the treasury policy:
// requests matched by its first rules and by later ones, with approvals to
// verify and without.
func BenchmarkEvaluate(b *testing.B) {
	pol, keys := benchTreasury(b)
	k := newTestKey(b, "bench")
	many := make([]out, 3000)
	for i := range many {
		many[i] = out{coldBTC, 1000}
	}
	cases := []struct {
		name      string
		plan      *policy.Plan
		approvers []string
	}{
		{"sign-in-message-no-approvals", derive(b, messageIntent(b, "Sign in to example.com"), k), nil},
		{"btc-allowlisted-1-approval", derive(b, psbtIntent(b, k, []int64{80_000_000}, []out{{coldBTC, 30_000_000}, {"", 49_990_000}}), k), []string{"alice"}},
		{"btc-other-3-approvals", derive(b, psbtIntent(b, k, []int64{80_000_000}, []out{{outsideBTC, 30_000_000}, {"", 49_990_000}}), k), []string{"alice", "bob", "carol"}},
		{"eth-stablecoin-1-approval", derive(b, ethIntent(b, 1, 0, usdc, big.NewInt(0), erc20("transfer(address,uint256)", coldETH, big.NewInt(1e6))), k), []string{"bob"}},
		{"btc-3000-outputs-1-approval", derive(b, psbtIntent(b, k, []int64{80_000_000}, many), k), []string{"alice"}},
	}
	for _, c := range cases {
		var as []policy.Approval
		for _, who := range c.approvers {
			as = append(as, keys[who].approve(b, c.plan.Statement(testNow.Add(time.Hour)).Text()))
		}
		vel, _ := policy.NewVelocity(0)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d, _ := pol.Evaluate(context.Background(), c.plan, policy.Input{Now: testNow, Approvals: as, Velocity: vel}); d == nil {
					b.Fatal("no decision")
				}
			}
		})
	}
}

// BenchmarkPerSignatureRequest is what a co-signing site adds to one
// signing request for a one-input PSBT under the treasury policy: parse the
// intent, derive the digest and summary (with the site's key cache warm),
// decode and verify one ed25519 approval, evaluate the rules and record the
// spend.
func BenchmarkPerSignatureRequest(b *testing.B) {
	pol, keys := benchTreasury(b)
	k := newTestKey(b, "bench")
	in := psbtIntent(b, k, []int64{80_000_000}, []out{{coldBTC, 30_000_000}, {"", 49_990_000}})
	plan := derive(b, in, k)
	enc := in.Bytes()
	evidence, _ := policy.EncodeApprovals([]policy.Approval{keys["alice"].approve(b, plan.Statement(testNow.Add(time.Hour)).Text())})
	ctx := context.Background()
	cache := policy.NewKeyCache(0)
	b.ReportAllocs()
	for b.Loop() {
		in, err := policy.ParseIntent(enc)
		if err != nil {
			b.Fatal(err)
		}
		p, err := cache.Derive(ctx, in, k.key)
		if err != nil {
			b.Fatal(err)
		}
		as, err := policy.DecodeApprovals(evidence)
		if err != nil {
			b.Fatal(err)
		}
		vel, _ := policy.NewVelocity(0)
		if _, err := pol.Authorize(ctx, p, policy.Input{Now: testNow, Approvals: as, Velocity: vel}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePolicy(b *testing.B) {
	src := readExample(b, "treasury")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.Parse("treasury", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPerSignatureRequestParallel is BenchmarkPerSignatureRequest on
// every core at once, sharing one key cache and one velocity record, as a
// busy site runs it.
func BenchmarkPerSignatureRequestParallel(b *testing.B) {
	pol, keys := benchTreasury(b)
	k := newTestKey(b, "bench")
	in := psbtIntent(b, k, []int64{80_000_000}, []out{{coldBTC, 30_000_000}, {"", 49_990_000}})
	plan := derive(b, in, k)
	enc := in.Bytes()
	evidence, _ := policy.EncodeApprovals([]policy.Approval{keys["alice"].approve(b, plan.Statement(testNow.Add(time.Hour)).Text())})
	cache := policy.NewKeyCache(0)
	vel, _ := policy.NewVelocity(0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			in, err := policy.ParseIntent(enc)
			if err != nil {
				b.Error(err)
				return
			}
			p, err := cache.Derive(ctx, in, k.key)
			if err != nil {
				b.Error(err)
				return
			}
			as, _ := policy.DecodeApprovals(evidence)
			if _, err := pol.Authorize(ctx, p, policy.Input{Now: testNow, Approvals: as, Velocity: vel}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDeriveWorstCaseLegacyPSBT derives about the most expensive PSBT
// MaxLegacySighashBytes lets a peer send: 220 P2PKH inputs of the key, each
// with its own previous transaction and derivation field. Each legacy
// sighash serializes the whole transaction, so the work grows with inputs
// × transaction size.
func BenchmarkDeriveWorstCaseLegacyPSBT(b *testing.B) {
	k := newTestKey(b, "bench")
	raw := legacyPSBT(b, k, 220)
	in, err := policy.NewPSBTIntent("mainnet", raw)
	if err != nil {
		b.Fatal(err)
	}
	cache := policy.NewKeyCache(0)
	if _, err := cache.Derive(context.Background(), in, k.key); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := cache.Derive(context.Background(), in, k.key); err != nil {
			b.Fatal(err)
		}
	}
}

// legacyPSBT spends n P2PKH outputs of k at m/0/i, each from its own
// one-output previous transaction.
func legacyPSBT(t testing.TB, k *testKey, n int) []byte {
	net, _ := wallet.Network("mainnet")
	tx := wire.NewMsgTx(1)
	var prevs []*wire.MsgTx
	for i := 0; i < n; i++ {
		addr, err := wallet.BitcoinAddress(k.pub(t, "m/0/"+itoa(i)), wallet.P2PKH, net)
		if err != nil {
			t.Fatal(err)
		}
		prev := wire.NewMsgTx(1)
		prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: uint32(i)}, nil, nil))
		prev.AddTxOut(wire.NewTxOut(100_000, payTo(t, addr)))
		prevs = append(prevs, prev)
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prev.TxHash()}, nil, nil))
	}
	dest, _ := btcutil.DecodeAddress(coldBTC, net)
	tx.AddTxOut(wire.NewTxOut(int64(n)*100_000-50_000, payTo(t, dest)))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	fp := wallet.PSBTFingerprint(k.xpub.Key)
	for i, prev := range prevs {
		p.Inputs[i].NonWitnessUtxo = prev
		p.Inputs[i].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: k.pub(t, "m/0/"+itoa(i)).SerializeCompressed(), MasterKeyFingerprint: fp, Bip32Path: []uint32{0, uint32(i)}}}
	}
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
