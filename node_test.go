package keyquorum_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/audit"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/softhsm"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

var (
	tokenDir *softhsm.Dir
	tokens   chan *softhsm.Token
	baseline goleak.Option
)

// TestMain creates every SoftHSM2 token the tests need before any test
// loads the PKCS#11 module (SoftHSM2 sees only tokens that exist when it
// is initialized), and checks for leaked goroutines at the end.
func TestMain(m *testing.M) {
	if os.Getenv(preParamsWorkerEnv) != "" {
		if err := keyquorum.RunPreParamsWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := os.MkdirTemp("", "kq-node-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	if tokenDir, err = softhsm.CreateDir(root); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("SOFTHSM2_CONF", tokenDir.ConfPath)
	const n = 40
	tokens = make(chan *softhsm.Token, n)
	for range n {
		tok, err := tokenDir.CreateToken()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		tokens <- tok
	}
	baseline = goleak.IgnoreCurrent()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(baseline); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	return code
}

// takeToken hands a test a token of its own (tokens are not reused: the
// test creates keys in them).
func takeToken(t testing.TB) *softhsm.Token {
	t.Helper()
	select {
	case tok := <-tokens:
		return tok
	default:
		t.Fatal("no SoftHSM2 token left; raise the count in TestMain")
		return nil
	}
}

// testLogger sends warnings and errors to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func siteConfig(t testing.TB, tok *softhsm.Token) keyquorum.Config {
	return keyquorum.Config{
		HSM:           hsmshare.Config{ModulePath: tokenDir.Module, TokenLabel: tok.Label, PIN: tok.PIN},
		CreateKeys:    true,
		StoreDir:      filepath.Join(t.TempDir(), "store"),
		SigningPolicy: testPolicy(t, "examples/policies/allow-raw-digests"),
		Logger:        testLogger(t),
	}
}

// testPolicy loads a policy file of the repository.
func testPolicy(t testing.TB, path string) *policy.Policy {
	t.Helper()
	p, err := keyquorum.LoadSigningPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type site struct {
	cfg  keyquorum.Config
	id   tss.PartyID
	node *keyquorum.Node
}

// newSites sets up n sites (keys created offline, the way `kqnode init`
// does), gives each its own pre-parameter fixture, and returns their
// configurations for a committee on 127.0.0.1. The sites are not started.
func newSites(t testing.TB, n int) []*site {
	t.Helper()
	ctx := context.Background()
	var sites []*site
	var peers []transport.Peer
	for i := range n {
		cfg := siteConfig(t, takeToken(t))
		off := cfg
		off.Offline = true
		node, err := keyquorum.Open(ctx, off)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := fixtures.PreParamsJSON(i % fixtures.PreParamsCount())
		if err != nil {
			t.Fatal(err)
		}
		pp, err := keyquorum.ParsePreParams(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := node.ImportPreParams(ctx, pp); err != nil {
			t.Fatal(err)
		}
		id := node.PartyID()
		if err := node.Close(); err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))
		cfg.ListenAddrs = []string{addr}
		cfg.CreateKeys = false
		cfg.NoPreParamsGeneration = true // never make safe primes in tests
		cfg.JoinTimeout = 5 * time.Second
		cfg.SendTimeout = 5 * time.Second
		cfg.RoundTimeout = 30 * time.Second
		sites = append(sites, &site{cfg: cfg, id: id})
		peers = append(peers, transport.Peer{ID: mustPeerID(t, id), Addrs: []ma.Multiaddr{ma.StringCast(addr)}})
	}
	for _, s := range sites {
		s.cfg.Peers = peers
	}
	t.Cleanup(func() {
		for _, s := range sites {
			s.stop(t)
		}
	})
	return sites
}

func mustPeerID(t testing.TB, id tss.PartyID) peer.ID {
	t.Helper()
	p, err := transport.PeerIDFromParty(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *site) start(t testing.TB) {
	t.Helper()
	node, err := keyquorum.Open(context.Background(), s.cfg)
	if err != nil {
		t.Fatalf("open site %s: %v", s.id, err)
	}
	s.node = node
}

func (s *site) stop(t testing.TB) {
	if s.node == nil {
		return
	}
	if err := s.node.Close(); err != nil {
		t.Errorf("close site %s: %v", s.id, err)
	}
	s.node = nil
}

func ids(sites ...*site) []tss.PartyID {
	var out []tss.PartyID
	for _, s := range sites {
		out = append(out, s.id)
	}
	return out
}

// verifyIndependently checks a signature with decred's secp256k1 package
// directly, not through any keyquorum code.
func verifyIndependently(t testing.TB, sig *keyquorum.Signature, digest [32]byte, pub *secp256k1.PublicKey) {
	t.Helper()
	parsed, err := secpecdsa.ParseDERSignature(sig.DER())
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Verify(digest[:], pub) {
		t.Fatalf("%s signature does not verify under %x", sig.Protocol, pub.SerializeCompressed())
	}
}

// TestNode_ThreeSites runs three sites in this process, each with its own
// SoftHSM2 token, store and libp2p host on 127.0.0.1, through one 2-of-3
// keygen and every kind of signing the Node offers.
func TestNode_ThreeSites(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen between three sites takes tens of seconds")
	}
	sites := newSites(t, 3)
	for _, s := range sites {
		s.start(t)
	}
	a, b, c := sites[0], sites[1], sites[2]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	key, err := a.node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(a, b, c), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sites {
		k, err := s.node.Key(ctx, key.ID)
		if err != nil || string(k.PublicKey) != string(key.PublicKey) {
			t.Fatalf("site %s: key %v, %v", s.id, k, err)
		}
	}
	root, err := secp256k1.ParsePubKey(key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ab := ids(a, b)

	t.Run("AutoUsesGG18WithoutPresignatures", func(t *testing.T) {
		digest := sha256.Sum256([]byte("gg18"))
		sig, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, SignOptions: keyquorum.SignOptions{Signers: ab}})
		if err != nil {
			t.Fatal(err)
		}
		if sig.Protocol != keyquorum.ProtocolGG18 {
			t.Fatalf("protocol %s, want gg18", sig.Protocol)
		}
		verifyIndependently(t, sig, digest, root)
	})

	t.Run("PresignThenAutoUsesGG20", func(t *testing.T) {
		res, err := a.node.Presign(ctx, keyquorum.PresignRequest{KeyID: key.ID, Signers: ab, Count: 2})
		if err != nil {
			t.Fatal(err)
		}
		if res.Made != 2 || res.Pool.Ready != 2 {
			t.Fatalf("made %d, ready %d; want 2, 2", res.Made, res.Pool.Ready)
		}
		// The other signer recorded the pool once its presigning succeeded.
		st, err := b.node.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Keys) != 1 || len(st.Keys[0].Pools) != 1 || st.Keys[0].Pools[0].Ready != 2 || st.Keys[0].Pools[0].Initiator != a.id {
			t.Fatalf("site b's status does not show a's pool: %+v", st.Keys)
		}
		digest := sha256.Sum256([]byte("gg20"))
		sig, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, SignOptions: keyquorum.SignOptions{Signers: ab}})
		if err != nil {
			t.Fatal(err)
		}
		if sig.Protocol != keyquorum.ProtocolGG20 {
			t.Fatalf("protocol %s, want gg20", sig.Protocol)
		}
		verifyIndependently(t, sig, digest, root)
		p, err := a.node.PoolStatus(ctx, keyquorum.PoolRequest{KeyID: key.ID, Signers: ab})
		if err != nil || p.Ready != 1 {
			t.Fatalf("pool after one signature: %+v, %v; want 1 ready", p, err)
		}
		// "m" and "" name the same pool.
		sig, err = a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, Path: "m",
			SignOptions: keyquorum.SignOptions{Signers: ab, Protocol: keyquorum.ProtocolGG20}})
		if err != nil || sig.Protocol != keyquorum.ProtocolGG20 {
			t.Fatalf("explicit gg20 under path m: %v", err)
		}
		verifyIndependently(t, sig, digest, root)
		// The presignatures were a's: b has none of its own for the set.
		_, err = b.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest,
			SignOptions: keyquorum.SignOptions{Signers: ab, Protocol: keyquorum.ProtocolGG20}})
		if !errors.Is(err, tss.ErrNoPresignature) {
			t.Fatalf("b signing GG20 without a pool of its own: got %v, want ErrNoPresignature", err)
		}
	})

	t.Run("AuditLogsTracePresignatures", func(t *testing.T) {
		// Both signers logged the batch a made and each use of it, with
		// the same presignature IDs, and b logged each use after it
		// authorized the session and before its share left it.
		ea, eb := auditEntries(t, ctx, a), auditEntries(t, ctx, b)
		// The signers are listed in the order of their peer IDs, which
		// differ from run to run.
		signers := []string{string(a.id), string(b.id)}
		slices.Sort(signers)
		made := func(es []audit.Entry) audit.Entry {
			t.Helper()
			m := entriesOf(es, "presig.made", nil)
			if len(m) != 1 || m[0].Fields["count"] != "2" || m[0].Fields["initiator"] != string(a.id) ||
				m[0].Fields["signers"] != strings.Join(signers, ",") || m[0].Fields["session"] == "" {
				t.Fatalf("presig.made entries: %v", m)
			}
			return m[0]
		}
		madeA, madeB := made(ea), made(eb)
		if madeA.Fields["presignatures"] != madeB.Fields["presignatures"] || madeA.Fields["pool"] != madeB.Fields["pool"] {
			t.Fatalf("a and b logged different batches: %s, %s", madeA.JSON(), madeB.JSON())
		}
		ids := strings.Split(madeA.Fields["presignatures"], ",")
		usedA, usedB := entriesOf(ea, "presig.used", nil), entriesOf(eb, "presig.used", nil)
		if len(usedA) != 2 || len(usedB) != 2 {
			t.Fatalf("presig.used: a %d, b %d entries; want 2 each", len(usedA), len(usedB))
		}
		for i := range usedB {
			ua, ub := usedA[i], usedB[i]
			if ua.Fields["presignatures"] != ids[i] || ub.Fields["presignatures"] != ids[i] || ua.Fields["session"] != ub.Fields["session"] {
				t.Fatalf("use %d: a %s, b %s; want presignature %s on both", i, ua.JSON(), ub.JSON(), ids[i])
			}
			auth := entriesOf(eb, "sign.authorize", map[string]string{"session": ub.Fields["session"]})
			if len(auth) != 1 || auth[0].Seq >= ub.Seq {
				t.Fatalf("b's authorization of session %s: %v, want one before its presig.used (entry %d)", ub.Fields["session"], auth, ub.Seq)
			}
		}
	})

	t.Run("DerivedPath", func(t *testing.T) {
		digest := sha256.Sum256([]byte("child key"))
		sig, err := c.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, Path: "m/0/1",
			SignOptions: keyquorum.SignOptions{Signers: ids(b, c)}})
		if err != nil {
			t.Fatal(err)
		}
		child, err := c.node.PublicKey(ctx, keyquorum.KeyPathRequest{KeyID: key.ID, Path: "m/0/1"})
		if err != nil {
			t.Fatal(err)
		}
		want, _, _, err := hd.DeriveKey(key.PublicKey, key.ChainCode, hd.Path{0, 1})
		if err != nil || !child.IsEqual(want) {
			t.Fatalf("child key %x, want %x (%v)", child.SerializeCompressed(), want.SerializeCompressed(), err)
		}
		verifyIndependently(t, sig, digest, child)
	})

	t.Run("PSBT", func(t *testing.T) {
		net := &chaincfg.RegressionNetParams
		packet, prevOut := testPSBT(t, root, net)
		res, err := a.node.SignPSBT(ctx, keyquorum.PSBTRequest{KeyID: key.ID, Packet: packet,
			Options: wallet.PSBTOptions{Net: net, Paths: []hd.Path{{}}}, SignOptions: keyquorum.SignOptions{Signers: ab}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Complete {
			t.Fatal("PSBT not complete")
		}
		// btcd's script engine, run here on the extracted transaction.
		fetcher := txscript.NewCannedPrevOutputFetcher(prevOut.PkScript, prevOut.Value)
		vm, err := txscript.NewEngine(prevOut.PkScript, res.Tx, 0, txscript.StandardVerifyFlags, nil,
			txscript.NewTxSigHashes(res.Tx, fetcher), prevOut.Value, fetcher)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.Execute(); err != nil {
			t.Fatalf("script engine rejects the signed input: %v", err)
		}
	})

	t.Run("EthereumEIP1559", func(t *testing.T) {
		chainID := big.NewInt(1337)
		to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 7, To: &to, Value: big.NewInt(1e15),
			Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9)})
		res, err := b.node.SignEthereumTx(ctx, keyquorum.EthereumTxRequest{KeyID: key.ID, Tx: tx, ChainID: chainID,
			SignOptions: keyquorum.SignOptions{Signers: ids(b, c)}})
		if err != nil {
			t.Fatal(err)
		}
		var signed types.Transaction
		if err := signed.UnmarshalBinary(res.Raw); err != nil {
			t.Fatal(err)
		}
		from, err := types.Sender(types.LatestSignerForChainID(chainID), &signed)
		if err != nil {
			t.Fatal(err)
		}
		if from != wallet.EthereumAddress(root) {
			t.Fatalf("sender %s, want %s", from, wallet.EthereumAddress(root))
		}
	})

	t.Run("PrepareOnline", func(t *testing.T) {
		if err := a.node.PrepareOnline(ctx, keyquorum.KeyPathRequest{KeyID: key.ID, Path: "m/0/1"}); err != nil {
			t.Fatal(err)
		}
		if err := a.node.PrepareOnline(ctx, keyquorum.KeyPathRequest{KeyID: "00000000000000000000000000000000"}); !errors.Is(err, tss.ErrUnknownKey) {
			t.Errorf("unknown key: %v, want tss.ErrUnknownKey", err)
		}
		if err := a.node.PrepareOnline(ctx, keyquorum.KeyPathRequest{KeyID: key.ID, Path: "m/0'/1"}); !errors.Is(err, tss.ErrBadRequest) || !errors.Is(err, hd.ErrHardened) {
			t.Errorf("hardened path: %v, want tss.ErrBadRequest and hd.ErrHardened", err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		digest := sha256.Sum256([]byte("refused"))
		_, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: "00000000000000000000000000000000", Digest: digest})
		if !errors.Is(err, tss.ErrUnknownKey) {
			t.Errorf("unknown key: %v, want tss.ErrUnknownKey", err)
		}
		_, err = a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest,
			SignOptions: keyquorum.SignOptions{Signers: ids(a, c), Protocol: keyquorum.ProtocolGG20}})
		if !errors.Is(err, tss.ErrNoPresignature) {
			t.Errorf("gg20 with an empty pool: %v, want tss.ErrNoPresignature", err)
		}
		_, err = a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest,
			SignOptions: keyquorum.SignOptions{Protocol: "gg99"}})
		if !errors.Is(err, tss.ErrBadRequest) {
			t.Errorf("unknown protocol: %v, want tss.ErrBadRequest", err)
		}
		_, err = a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, Path: "m/0'/1"})
		if !errors.Is(err, tss.ErrBadRequest) || !errors.Is(err, hd.ErrHardened) {
			t.Errorf("hardened path: %v, want tss.ErrBadRequest and hd.ErrHardened", err)
		}
		_, err = a.node.SignPSBT(ctx, keyquorum.PSBTRequest{KeyID: key.ID})
		if !errors.Is(err, wallet.ErrInvalidPSBT) {
			t.Errorf("no PSBT: %v, want wallet.ErrInvalidPSBT", err)
		}
		_, err = a.node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(a, b), Threshold: 3})
		if !errors.Is(err, tss.ErrBadRequest) {
			t.Errorf("3-of-2 keygen: %v, want tss.ErrBadRequest", err)
		}
	})

	t.Run("StatusShowsOperations", func(t *testing.T) {
		st, err := a.node.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.PeerID != a.id || len(st.Peers) != 2 || st.PeersReachable != 2 || len(st.Keys) != 1 {
			t.Fatalf("status: %+v", st)
		}
		kinds := map[string]int{}
		for _, o := range st.Finished {
			if o.Error == "" {
				kinds[o.Kind]++
			}
		}
		if kinds["keygen"] != 1 || kinds["presign"] != 1 || kinds["sign-psbt"] != 1 {
			t.Fatalf("finished operations: %v", kinds)
		}
		// The sign-psbt's signature is recorded as its step.
		var psbtOp uint64
		for _, o := range st.Finished {
			if o.Kind == "sign-psbt" && o.Error == "" {
				psbtOp = o.ID
			}
		}
		steps := 0
		for _, o := range st.Finished {
			if o.Parent != 0 && (o.Parent != psbtOp || o.Kind != "sign") {
				t.Fatalf("operation %+v is marked as a step of #%d, which is not the sign-psbt #%d", o, o.Parent, psbtOp)
			}
			if o.Parent == psbtOp {
				steps++
			}
		}
		if steps == 0 {
			t.Fatalf("the sign-psbt #%d has no signature step among %+v", psbtOp, st.Finished)
		}
		st, err = c.node.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Joined) == 0 || st.Joined[0].Op != tss.OpKeygen || st.Joined[0].Initiator != a.id {
			t.Fatalf("site c does not list the keygen it joined: %+v", st.Joined)
		}
	})

	t.Run("StoppedSiteIsNamed", func(t *testing.T) {
		c.stop(t)
		digest := sha256.Sum256([]byte("c is down"))
		sig, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, SignOptions: keyquorum.SignOptions{Signers: ab, Protocol: keyquorum.ProtocolGG18}})
		if err != nil {
			t.Fatalf("a and b sign while c is down: %v", err)
		}
		verifyIndependently(t, sig, digest, root)
		_, err = a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, SignOptions: keyquorum.SignOptions{Signers: ids(a, c)}})
		if err == nil {
			t.Fatal("signed with a stopped site")
		}
		if !strings.Contains(err.Error(), string(c.id)) {
			t.Fatalf("error does not name the stopped site %s: %v", c.id, err)
		}
		var rt *tss.RoundTimeoutError
		var un *tss.UnreachableError
		switch {
		case errors.As(err, &rt):
			if !slices.Contains(rt.Parties, c.id) {
				t.Fatalf("timeout names %v, not %s", rt.Parties, c.id)
			}
		case errors.As(err, &un):
			if !slices.Contains(un.Parties, c.id) {
				t.Fatalf("unreachable names %v, not %s", un.Parties, c.id)
			}
		default:
			t.Fatalf("error is neither a round timeout nor unreachable: %v", err)
		}
		t.Logf("with c down: %v", err)
		failed := entriesOf(auditEntries(t, ctx, a), "op.failed", nil)
		if len(failed) == 0 || !strings.Contains(failed[len(failed)-1].Fields["missing"], string(c.id)) {
			t.Fatalf("a's log does not name the missing site %s: %v", c.id, failed)
		}
	})

	t.Run("KeyLabel", func(t *testing.T) {
		// A label is a's own name for the key: a's status shows it, b's
		// does not, every change is in a's audit log, and bad labels and
		// unknown keys are refused without touching the one it has.
		labelOf := func(s *site) string {
			t.Helper()
			st, err := s.node.Status(ctx)
			if err != nil || len(st.Keys) != 1 {
				t.Fatalf("status: %v, %+v", err, st)
			}
			return st.Keys[0].Label
		}
		if err := a.node.SetKeyLabel(ctx, key.ID, "treasury hot"); err != nil {
			t.Fatal(err)
		}
		if got := labelOf(a); got != "treasury hot" {
			t.Fatalf("a's label %q, want %q", got, "treasury hot")
		}
		if got := labelOf(b); got != "" {
			t.Fatalf("b's label %q: a label is a's own", got)
		}
		for _, bad := range []string{" lead", "two\nlines", "esc\x1b[31m", strings.Repeat("x", keyquorum.MaxKeyLabel+1), "\xff"} {
			if err := a.node.SetKeyLabel(ctx, key.ID, bad); !errors.Is(err, tss.ErrBadRequest) {
				t.Errorf("label %q: got %v, want ErrBadRequest", bad, err)
			}
		}
		if err := a.node.SetKeyLabel(ctx, strings.Repeat("0", 32), "x"); !errors.Is(err, tss.ErrUnknownKey) {
			t.Errorf("label of an unknown key: got %v, want ErrUnknownKey", err)
		}
		if got := labelOf(a); got != "treasury hot" {
			t.Fatalf("a's label after refused changes %q", got)
		}
		es := entriesOf(auditEntries(t, ctx, a), "key.label", map[string]string{"key_id": key.ID})
		if len(es) != 1 || es[0].Fields["label"] != "treasury hot" {
			t.Fatalf("key.label entries %v, want the one change", es)
		}
		// Set again to the next subtest's value: it must survive a restart.
		if err := a.node.SetKeyLabel(ctx, key.ID, "treasury"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("RestartKeepsSharesAndRefillsPools", func(t *testing.T) {
		a.stop(t)
		b.stop(t)
		a.cfg.PoolTarget, b.cfg.PoolTarget = 3, 3
		a.start(t)
		b.start(t)
		// Both signers must hold the refilled presignatures of a's pool (a
		// made it, so a refills it; b keeps no pool of its own for the
		// set): a stores its part of a batch before b has confirmed storing
		// its own.
		deadline := time.Now().Add(3 * time.Minute)
		for _, s := range []*site{a, b} {
			for {
				p, err := s.node.PoolStatus(ctx, keyquorum.PoolRequest{KeyID: key.ID, Signers: ab, Initiator: a.id})
				if err != nil {
					t.Fatal(err)
				}
				if p.Ready >= 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("pool not refilled to 3 after restart: %+v", p)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		if p, err := b.node.PoolStatus(ctx, keyquorum.PoolRequest{KeyID: key.ID, Signers: ab}); err != nil || p.Ready+p.Making != 0 {
			t.Fatalf("b made a pool of its own for the set: %+v, %v", p, err)
		}
		digest := sha256.Sum256([]byte("after restart"))
		sig, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, SignOptions: keyquorum.SignOptions{Signers: ab}})
		if err != nil || sig.Protocol != keyquorum.ProtocolGG20 {
			t.Fatalf("sign after restart: %v, %v", sig, err)
		}
		verifyIndependently(t, sig, digest, root)
		if st, err := a.node.Status(ctx); err != nil || len(st.Keys) != 1 || st.Keys[0].Label != "treasury" {
			t.Fatalf("a's key after restart: %v, %+v; want the label treasury", err, st)
		}
	})

	t.Run("PoolTargetAndDrain", func(t *testing.T) {
		// a sizes its own pools: a target for a new (signers, path) makes
		// the pool; a drain stops the refill, empties a's pool and, by a
		// reconciliation, b's parts of it; both survive a restart; c may
		// drain only its parts of a's pool and size none of a's.
		poolOf := func(s *site, signers []tss.PartyID, path string, initiator tss.PartyID) keyquorum.PoolStatus {
			t.Helper()
			p, err := s.node.PoolStatus(ctx, keyquorum.PoolRequest{KeyID: key.ID, Signers: signers, Path: path, Initiator: initiator})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		waitPool := func(s *site, signers []tss.PartyID, path string, initiator tss.PartyID, ready int) {
			t.Helper()
			deadline := time.Now().Add(3 * time.Minute)
			for p := poolOf(s, signers, path, initiator); p.Ready < ready || p.Making != 0; p = poolOf(s, signers, path, initiator) {
				if time.Now().After(deadline) {
					t.Fatalf("%s's view of %s's pool %v %s: %+v; want %d ready", s.id, initiator, signers, path, p, ready)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		if c.node == nil { // StoppedSiteIsNamed stopped it
			c.start(t)
		}
		ac := ids(a, c)
		p, err := a.node.SetPoolTarget(ctx, keyquorum.PoolRequest{KeyID: key.ID, Signers: ac, Path: "m/0/9"}, 2)
		if err != nil || p.Target != 2 || p.Initiator != a.id {
			t.Fatalf("a sets a target for a new pool: %+v, %v", p, err)
		}
		waitPool(a, ac, "m/0/9", a.id, 2)
		waitPool(c, ac, "m/0/9", a.id, 2)
		for _, bad := range []struct {
			req    keyquorum.PoolRequest
			target int
		}{
			{keyquorum.PoolRequest{KeyID: key.ID, Signers: ab, Initiator: b.id}, 1},
			{keyquorum.PoolRequest{KeyID: key.ID, Signers: ab}, -1},
			{keyquorum.PoolRequest{KeyID: key.ID, Signers: ab}, keyquorum.MaxPoolTarget + 1},
			{keyquorum.PoolRequest{KeyID: key.ID, Signers: ab, Path: "m/0'"}, 1},
		} {
			if _, err := a.node.SetPoolTarget(ctx, bad.req, bad.target); !errors.Is(err, tss.ErrBadRequest) {
				t.Errorf("target %d for %+v: got %v, want ErrBadRequest", bad.target, bad.req, err)
			}
		}
		if _, err := c.node.SetPoolTarget(ctx, keyquorum.PoolRequest{KeyID: key.ID, Signers: ab}, 1); err == nil {
			t.Error("c set a target for a pool of signers it is not one of")
		}

		waitPool(a, ab, "", a.id, 3)
		d, err := a.node.DrainPool(ctx, keyquorum.PoolRequest{KeyID: key.ID, Signers: ab})
		if err != nil || d.Discarded != 3 || !d.CoSigners || d.Pool.Ready != 0 || d.Pool.Target != 0 {
			t.Fatalf("a drains its pool: %+v, %v; want 3 discarded everywhere and no target", d, err)
		}
		if p := poolOf(b, ab, "", a.id); p.Ready != 0 || p.Discarded < 3 {
			t.Fatalf("b's parts of a's drained pool: %+v; want none ready", p)
		}
		// c drains its parts of a's m/0/9 pool: a's pool itself is a's.
		d, err = c.node.DrainPool(ctx, keyquorum.PoolRequest{KeyID: key.ID, Signers: ac, Path: "m/0/9", Initiator: a.id})
		if err != nil || d.Discarded != 2 || d.CoSigners {
			t.Fatalf("c drains its parts of a's pool: %+v, %v", d, err)
		}
		if p := poolOf(a, ac, "m/0/9", a.id); p.Ready != 2 || p.Target != 2 {
			t.Fatalf("a's pool after c drained its parts: %+v; a's own view is unchanged", p)
		}
		es := auditEntries(t, ctx, a)
		if got := entriesOf(es, "pool.target", map[string]string{"key_id": key.ID, "target": "2", "path": "m/0/9"}); len(got) != 1 {
			t.Errorf("pool.target entries on a: %v", got)
		}
		if got := entriesOf(es, "pool.drain", map[string]string{"key_id": key.ID, "initiator": string(a.id)}); len(got) != 1 {
			t.Errorf("pool.drain entries on a: %v", got)
		}

		// Targets survive a restart: the drained pool stays empty even
		// though Config.PoolTarget is 3.
		if _, err := a.node.SetPoolTarget(ctx, keyquorum.PoolRequest{KeyID: key.ID, Signers: ac, Path: "m/0/9"}, 0); err != nil {
			t.Fatal(err)
		}
		a.stop(t)
		a.start(t)
		time.Sleep(2 * time.Second)
		st, err := a.node.Status(ctx)
		if err != nil || len(st.Keys) != 1 {
			t.Fatalf("status after restart: %+v, %v", st, err)
		}
		for _, p := range st.Keys[0].Pools {
			if p.Initiator == a.id && (p.Target != 0 || p.Making != 0 || (slices.Contains(p.Signers, b.id) && p.Ready != 0)) {
				t.Errorf("a's pool after restart: %+v; want target 0 and nothing made", p)
			}
		}
	})

	t.Run("CommitteeMemberMissingFromPeerFile", func(t *testing.T) {
		// c restarts with a peer file that lacks b (a mistyped peer ID):
		// it says so at start, naming the key and b.
		c.stop(t)
		var logs syncBuffer
		saved := c.cfg
		defer func() { c.stop(t); c.cfg = saved; c.start(t) }()
		c.cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		c.cfg.Peers = nil
		for _, p := range saved.Peers {
			if p.PartyID() != b.id {
				c.cfg.Peers = append(c.cfg.Peers, p)
			}
		}
		c.start(t)
		if out := logs.String(); !strings.Contains(out, "not in the peer file") || !strings.Contains(out, string(b.id)) || !strings.Contains(out, key.ID) {
			t.Fatalf("start with a peer file that lacks a committee member logged:\n%s", out)
		}
	})

	closed := a.node
	for _, s := range sites {
		s.stop(t)
	}
	if _, err := closed.Status(ctx); !errors.Is(err, keyquorum.ErrClosed) {
		t.Fatalf("status after Close: %v, want ErrClosed", err)
	}
	goleak.VerifyNone(t, baseline)
}

// testPSBT builds a regtest PSBT spending a 0.01 BTC output paid to the
// key's P2WPKH address.
func testPSBT(t testing.TB, pub *secp256k1.PublicKey, net *chaincfg.Params) (*psbt.Packet, *wire.TxOut) {
	t.Helper()
	addr, err := wallet.BitcoinAddress(pub, wallet.P2WPKH, net)
	if err != nil {
		t.Fatal(err)
	}
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		t.Fatal(err)
	}
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{}, []byte{txscript.OP_TRUE}, nil))
	prev.AddTxOut(wire.NewTxOut(1_000_000, script))
	dest, err := btcutil.DecodeAddress("bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqdku202", net)
	if err != nil {
		t.Fatal(err)
	}
	destScript, err := txscript.PayToAddrScript(dest)
	if err != nil {
		t.Fatal(err)
	}
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prev.TxHash(), Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(990_000, destScript))
	packet, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	packet.Inputs[0].WitnessUtxo = prev.TxOut[0]
	// The whole previous transaction too: every site checks the amount
	// against it (the signing policy's intents require it).
	packet.Inputs[0].NonWitnessUtxo = prev
	return packet, prev.TxOut[0]
}

// TestOpen_Errors checks that Open refuses bad configurations and setups
// with the error callers branch on, and leaves nothing behind.
func TestOpen_Errors(t *testing.T) {
	ctx := context.Background()
	tok := takeToken(t)

	cfg := siteConfig(t, tok)
	cfg.StoreDir = ""
	if _, err := keyquorum.Open(ctx, cfg); !errors.Is(err, keyquorum.ErrInvalidConfig) {
		t.Errorf("no StoreDir: %v, want ErrInvalidConfig", err)
	}
	cfg = siteConfig(t, tok)
	if _, err := keyquorum.Open(ctx, cfg); !errors.Is(err, keyquorum.ErrInvalidConfig) {
		t.Errorf("no peers: %v, want ErrInvalidConfig", err)
	}

	cfg = siteConfig(t, tok)
	cfg.Offline = true
	cfg.HSM.PIN = "wrong-" + tok.PIN
	if _, err := keyquorum.Open(ctx, cfg); !errors.Is(err, hsmshare.ErrWrongPIN) {
		t.Errorf("wrong PIN: %v, want hsmshare.ErrWrongPIN", err)
	}
	if _, err := os.Stat(cfg.StoreDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Open created the store directory: %v", err)
	}

	cfg = siteConfig(t, tok)
	cfg.Offline = true
	cfg.CreateKeys = false
	if _, err := keyquorum.Open(ctx, cfg); !errors.Is(err, hsmshare.ErrKeyNotFound) {
		t.Errorf("no keys and CreateKeys off: %v, want hsmshare.ErrKeyNotFound", err)
	}

	// Set the site up, then check that a second Open loads the same keys
	// and that an offline node refuses protocol operations.
	cfg.CreateKeys = true
	node, err := keyquorum.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := node.PartyID()
	if _, err := node.Keygen(ctx, keyquorum.KeygenRequest{Parties: []tss.PartyID{id, id}, Threshold: 1}); !errors.Is(err, keyquorum.ErrOffline) {
		t.Errorf("keygen offline: %v, want ErrOffline", err)
	}
	st, err := node.Status(ctx)
	if err != nil || !st.Offline || st.PeerID != id || st.IdentityPublicKey == "" {
		t.Errorf("offline status: %+v, %v", st, err)
	}
	// The store is locked while the node is open.
	if _, err := keyquorum.Open(ctx, cfg); !errors.Is(err, hsmshare.ErrStoreLocked) {
		t.Errorf("second node on the same store: %v, want hsmshare.ErrStoreLocked", err)
	}
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
	if err := node.ImportPreParams(ctx, nil); !errors.Is(err, keyquorum.ErrClosed) {
		t.Errorf("import after Close: %v, want ErrClosed", err)
	}
	cfg.CreateKeys = false
	node, err = keyquorum.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if node.PartyID() != id {
		t.Errorf("reopened site has party ID %s, want %s", node.PartyID(), id)
	}
	if err := node.ImportPreParams(ctx, nil); !errors.Is(err, tss.ErrBadRequest) {
		t.Errorf("import of nothing: %v, want tss.ErrBadRequest", err)
	}
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, baseline)
}

// syncBuffer is a bytes.Buffer that a logger and a test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// auditEntries returns every entry of s's audit log.
func auditEntries(t *testing.T, ctx context.Context, s *site) []audit.Entry {
	t.Helper()
	es, err := s.node.AuditLog().Tail(ctx, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// entriesOf returns the entries of type typ whose fields include want.
func entriesOf(es []audit.Entry, typ string, want map[string]string) []audit.Entry {
	var out []audit.Entry
	for _, e := range es {
		ok := e.Type == typ
		for k, v := range want {
			ok = ok && e.Fields[k] == v
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}
