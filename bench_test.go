package keyquorum_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// BenchmarkNodeSign measures one 2-of-3 signature through the Node
// facade, three sites in this process over libp2p on 127.0.0.1, each with
// its own SoftHSM2 token and signing policy: classic GG18 signing and GG20
// online signing of raw-digest intents, and GG20 online signing of a
// one-input PSBT with one approval, which every signer derives, verifies,
// evaluates and records (a durable sealed write of its velocity record)
// before it signs. Presignatures are made before the timer starts.
func BenchmarkNodeSign(b *testing.B) {
	alice := newApprover(b, "alice")
	pol, err := policy.Parse("bench", []byte(strings.Join([]string{
		"keyquorum-policy 1",
		alice.line(),
		"group treasury alice",
		"rule psbt allow treasury=1",
		`  kind == "bitcoin-psbt" && btc.fee_sat < 100000`,
		"rule raw allow-raw-digest",
		`  kind == "raw-digest"`,
		"",
	}, "\n")))
	if err != nil {
		b.Fatal(err)
	}
	sites := newSites(b, 3)
	for _, s := range sites {
		s.cfg.SigningPolicy = pol
		s.start(b)
	}
	ctx := context.Background()
	key, err := sites[0].node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(sites...), Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	signers := ids(sites[:2]...)
	// Three other sites whose audit logs are off, for gg20-online-audit-off.
	off := newSites(b, 3)
	for _, s := range off {
		s.cfg.SigningPolicy = pol
		s.cfg.DisableAudit = true
		s.start(b)
	}
	offKey, err := off[0].node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(off...), Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("benchmark"))
	b.Run("gg18", func(b *testing.B) {
		for range b.N {
			if _, err := sites[0].node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest,
				SignOptions: keyquorum.SignOptions{Signers: signers, Protocol: keyquorum.ProtocolGG18}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gg20-online-psbt-approved", func(b *testing.B) {
		b.StopTimer()
		root, err := secp256k1.ParsePubKey(key.PublicKey)
		if err != nil {
			b.Fatal(err)
		}
		packet, _ := testPSBT(b, root, &chaincfg.RegressionNetParams)
		var buf bytes.Buffer
		if err := packet.Serialize(&buf); err != nil {
			b.Fatal(err)
		}
		in, err := policy.NewPSBTIntent("regtest", buf.Bytes(), hd.Path{})
		if err != nil {
			b.Fatal(err)
		}
		plan, err := sites[0].node.Plan(ctx, keyquorum.PlanRequest{KeyID: key.ID, Intent: in})
		if err != nil {
			b.Fatal(err)
		}
		approval := alice.approve(b, plan, time.Now().Add(time.Hour))
		if _, err := sites[0].node.Presign(ctx, keyquorum.PresignRequest{KeyID: key.ID, Signers: signers, Count: b.N}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for range b.N {
			if _, err := sites[0].node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: plan.Digests[0].Digest,
				SignOptions: keyquorum.SignOptions{Signers: signers, Protocol: keyquorum.ProtocolGG20,
					Intent: in, Approvals: []policy.Approval{approval}}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gg20-online", func(b *testing.B) {
		benchOnline(b, sites[0].node, key.ID, signers, digest)
	})
	b.Run("gg20-online-audit-off", func(b *testing.B) {
		benchOnline(b, off[0].node, offKey.ID, ids(off[:2]...), digest)
	})
}

// benchOnline times b.N GG20 online signatures of digest by n with
// signers, and reports their median (p50-ms); the presignatures are made
// before the timer starts.
func benchOnline(b *testing.B, n *keyquorum.Node, keyID string, signers []tss.PartyID, digest [32]byte) {
	b.StopTimer()
	ctx := context.Background()
	if _, err := n.Presign(ctx, keyquorum.PresignRequest{KeyID: keyID, Signers: signers, Count: b.N}); err != nil {
		b.Fatal(err)
	}
	took := make([]time.Duration, 0, b.N)
	b.StartTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := n.Sign(ctx, keyquorum.SignRequest{KeyID: keyID, Digest: digest,
			SignOptions: keyquorum.SignOptions{Signers: signers, Protocol: keyquorum.ProtocolGG20}}); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2])/1e6, "p50-ms")
}

// preParamsWorkerEnv, set in the environment of the test binary, makes it
// a pre-parameter worker (keyquorum.RunPreParamsWorker) instead of running
// tests: BenchmarkNodeSignDuringPreParams starts it as one.
const preParamsWorkerEnv = "KQ_TEST_PREPARAMS_WORKER"

// BenchmarkNodeSignDuringPreParams measures one 2-of-3 signature (GG18,
// and GG20 online) through the Node facade, three sites in this process
// over libp2p on 127.0.0.1, while the initiating site generates Paillier
// pre-parameters in the background: not at all (idle), in a worker child
// process at the lowest priority (Config.PreParamsCommand, what kqnode
// does), and inside the site's process (no PreParamsCommand). The time
// of a signature during generation over the idle one is the slowdown
// generation causes.
func BenchmarkNodeSignDuringPreParams(b *testing.B) {
	sites := newSites(b, 3)
	for _, s := range sites {
		s.start(b)
	}
	ctx := context.Background()
	key, err := sites[0].node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(sites...), Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	signers := ids(sites[:2]...)
	digest := sha256.Sum256([]byte("benchmark"))
	base := sites[0].cfg
	for _, gen := range []struct {
		name    string
		on      bool
		command []string
	}{
		{"idle", false, nil},
		{"worker", true, []string{os.Args[0], "-test.run=^$"}},
		{"in-process", true, nil},
	} {
		for _, proto := range []keyquorum.Protocol{keyquorum.ProtocolGG18, keyquorum.ProtocolGG20} {
			b.Run(fmt.Sprintf("preparams=%s/protocol=%s", gen.name, proto), func(b *testing.B) {
				b.StopTimer()
				sites[0].stop(b)
				sites[0].cfg = base
				if gen.on {
					b.Setenv(preParamsWorkerEnv, "1")
					sites[0].cfg.NoPreParamsGeneration = false
					sites[0].cfg.PreParamsTarget = 1000 // never reached: generation runs throughout
					sites[0].cfg.PreParamsCommand = gen.command
				}
				sites[0].start(b)
				defer func() {
					sites[0].stop(b)
					sites[0].cfg = base
					sites[0].start(b)
				}()
				if proto == keyquorum.ProtocolGG20 {
					if _, err := sites[0].node.Presign(ctx, keyquorum.PresignRequest{KeyID: key.ID, Signers: signers, Count: b.N}); err != nil {
						b.Fatal(err)
					}
				}
				if gen.on {
					waitGenerating(b, sites[0].node)
				}
				b.StartTimer()
				for range b.N {
					if _, err := sites[0].node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest,
						SignOptions: keyquorum.SignOptions{Signers: signers, Protocol: proto}}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if gen.on {
					// Still generating when the timer stopped: every
					// signature was measured during generation.
					waitGenerating(b, sites[0].node)
				}
			})
		}
	}
}

// waitGenerating waits until node is generating a pre-parameter set.
func waitGenerating(b *testing.B, node *keyquorum.Node) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := node.Status(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.PreParams.Generating > 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("no pre-parameter generation running: %+v", st.PreParams)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
