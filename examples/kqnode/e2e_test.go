package main

// End-to-end tests of the kqnode binary: three sites as separate OS
// processes, each with its own SoftHSM2 token directory, home and store,
// driven only through the command line and the control API, the way
// operators and scripts use them.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/internal/softhsm"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

// e2eSite is one site: its token, home and process.
type e2eSite struct {
	name    string
	hsm     *softhsm.Dir
	token   *softhsm.Token
	pinFile string
	home    string
	port    int
	peerID  string
	proc    *proctest.Proc
}

func (s *e2eSite) env() []string { return []string{s.hsm.Env()} }

// result is one kqnode invocation.
type result struct {
	code           int
	stdout, stderr string
}

// json decodes the single JSON object a --json command prints.
func (r result) json(t testing.TB, v any) {
	t.Helper()
	out := strings.TrimSpace(r.stdout)
	if strings.Count(out, "\n") != 0 {
		t.Fatalf("stdout holds more than one line: %q", out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
}

// cli runs the kqnode binary.
type cli struct{ bin string }

func (c cli) run(t testing.TB, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("kqnode %s: %v", args[0], err)
	}
	return r
}

// ok runs a command that must succeed and decodes its JSON.
func (c cli) ok(t testing.TB, env []string, v any, args ...string) {
	t.Helper()
	r := c.run(t, env, append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("kqnode %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	r.json(t, v)
}

// fails runs a command that must fail with exit status 1, the given error
// code on stdout and a message on stderr, and returns the error body.
func (c cli) fails(t *testing.T, env []string, wantExit int, wantCode string, args ...string) errorBody {
	t.Helper()
	r := c.run(t, env, append(args, "--json")...)
	if r.code != wantExit {
		t.Fatalf("kqnode %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, wantExit, r.stdout, r.stderr)
	}
	var eb errorBody
	r.json(t, &eb)
	if eb.Code != wantCode {
		t.Fatalf("kqnode %s: code %q, want %q (%s)", args[0], eb.Code, wantCode, eb.Error)
	}
	if !strings.HasPrefix(r.stderr, "kqnode ") || len(strings.TrimSpace(r.stderr)) < 20 {
		t.Fatalf("kqnode %s: stderr does not explain the failure: %q", args[0], r.stderr)
	}
	return eb
}

// snapshot records every file under dirs with its mode and content hash.
func snapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == d {
				return nil
			}
			if err != nil {
				return err
			}
			if e.Name() == "lock" && filepath.Base(filepath.Dir(p)) == "store" {
				return nil // the store's flock file: its content is the holder's PID
			}
			if e.IsDir() && e.Name() == "audit" && filepath.Dir(p) == d {
				return filepath.SkipDir // records refusals by design; auditEntries checks it
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			v := fi.Mode().String()
			if fi.Mode().IsRegular() { // not the API socket
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				v += fmt.Sprintf(" %x", sha256.Sum256(b))
			}
			out[p] = v
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed %s on disk", what, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s created %s on disk", what, p)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestCLI_EndToEnd runs three kqnode sites as OS processes through the
// demo's flow, the failures operators meet (bad PIN, unknown key,
// malformed input, a wrong API token, a non-loopback API address), a site
// killed with SIGKILL and restarted, a crashed site's TCP port taken by
// another user's program, and a graceful stop.
func TestCLI_EndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen take about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 2)
	a, b, sc := sites[0], sites[1], sites[2]
	initArgs := func(s *e2eSite, pinFile string) []string {
		return []string{"init", "--home", s.home, "--module", s.hsm.Module, "--token", s.token.Label, "--pin-source", "file:" + pinFile}
	}

	t.Run("InitTwiceIsSafe", func(t *testing.T) {
		before := snapshot(t, a.home)
		var res initResult
		c.ok(t, a.env(), &res, initArgs(a, a.pinFile)...)
		if res.PeerID != a.peerID || res.FixturesImported != 0 || res.PreParamsReady != 2 {
			t.Fatalf("second init: %+v, want peer %s, nothing imported, 2 ready", res, a.peerID)
		}
		sameSnapshot(t, "a second init", before, snapshot(t, a.home))
	})

	t.Run("BadPIN", func(t *testing.T) {
		wrong := filepath.Join(root, "wrong-pin")
		if err := os.WriteFile(wrong, []byte("not-the-pin\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// On a site that is set up...
		before := snapshot(t, a.home)
		eb := c.fails(t, a.env(), 1, codeWrongPIN, initArgs(a, wrong)...)
		if !strings.Contains(eb.Error, "PIN") {
			t.Errorf("the message does not mention the PIN: %s", eb.Error)
		}
		sameSnapshot(t, "init with a wrong PIN", before, snapshot(t, a.home))
		// ... and on a new home, which must not be created.
		fresh := &e2eSite{home: filepath.Join(root, "never-created"), hsm: a.hsm, token: a.token}
		c.fails(t, a.env(), 1, codeWrongPIN, initArgs(fresh, wrong)...)
		if _, err := os.Stat(fresh.home); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("init with a wrong PIN created %s", fresh.home)
		}
		// run reads the PIN at every start: a wrong one stops it at once.
		if err := os.WriteFile(a.pinFile, []byte("not-the-pin\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := c.run(t, a.env(), "run", "--home", a.home, "--peers", writePeers(t, root, sites), "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", a.port))
		if err := os.WriteFile(a.pinFile, []byte(a.token.PIN+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if r.code != 1 || !strings.Contains(r.stderr, "wrong PIN") {
			t.Fatalf("run with a wrong PIN: exit %d, stderr %q", r.code, r.stderr)
		}
		sameSnapshot(t, "run with a wrong PIN", before, snapshot(t, a.home))
	})

	t.Run("APIOnLoopbackOnly", func(t *testing.T) {
		before := snapshot(t, a.home)
		for _, api := range []string{"0.0.0.0:7700", "[::]:7700", "192.0.2.1:7700", "localhost:7700", "7700"} {
			r := c.run(t, a.env(), "run", "--home", a.home, "--peers", writePeers(t, root, sites), "--api", api)
			if r.code != 2 || !strings.Contains(r.stderr, "loopback") {
				t.Errorf("run --api %s: exit %d, stderr %q; want a usage error about loopback", api, r.code, r.stderr)
			}
		}
		sameSnapshot(t, "run with a non-loopback API address", before, snapshot(t, a.home))
	})

	peerFile := writePeers(t, root, sites)
	cluster := proctest.New(t)
	// a and c serve their API on their home's Unix socket (the default),
	// b on loopback TCP with TLS.
	start := func(s *e2eSite) {
		t.Helper()
		if s.proc == nil {
			args := []string{"run", "--home", s.home, "--peers", peerFile, "--policy", testPolicyFile(t), "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", s.port),
				"--preparams-target", "0", "--join-timeout", "5s", "--send-timeout", "5s",
				"--round-timeout", "1m", "--log-level", "debug"}
			if s == b {
				args = append(args, "--api", "127.0.0.1:0")
			}
			p, err := cluster.Start(ctx, proctest.Spec{Name: "site-" + s.name, Path: c.bin, Env: s.env(), Args: args})
			if err != nil {
				t.Fatal(err)
			}
			s.proc = p
		} else if err := s.proc.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := s.proc.WaitForLine(wctx, `{"ready":true`); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sites {
		start(s)
	}
	homes := []string{a.home, b.home, sc.home}

	key := keygen2of3(t, c, a, b, sc)
	if len(key.KeyID) != 32 || len(key.PublicKey) != 66 || !strings.HasPrefix(key.BTCAddress, "bcrt1q") ||
		!strings.HasPrefix(key.ETHAddress, "0x") || key.Threshold != 2 || len(key.Parties) != 3 {
		t.Fatalf("keygen: %+v", key)
	}
	pubBytes, _ := hex.DecodeString(key.PublicKey)
	pub, err := secp256k1.ParsePubKey(pubBytes)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(t *testing.T, via *e2eSite, msg string, protocol string, signers ...*e2eSite) signResult {
		t.Helper()
		digest := sha256.Sum256([]byte(msg))
		var ids []string
		for _, s := range signers {
			ids = append(ids, s.peerID)
		}
		var sig signResult
		c.ok(t, nil, &sig, "sign", "--home", via.home, "--key", key.KeyID, "--digest", hex.EncodeToString(digest[:]),
			"--signers", strings.Join(ids, ","), "--protocol", protocol)
		der, _ := hex.DecodeString(sig.DER)
		parsed, err := secpecdsa.ParseDERSignature(der)
		if err != nil || !parsed.Verify(digest[:], pub) || (protocol != "auto" && sig.Protocol != protocol) || sig.PublicKey != key.PublicKey {
			t.Fatalf("%s signature %+v does not verify under %s (%v)", protocol, sig, key.PublicKey, err)
		}
		return sig
	}

	t.Run("SignDigest", func(t *testing.T) {
		sign(t, a, "pay 1 BTC", "gg18", a, b)
		sign(t, sc, "pay 2 BTC", "gg18", b, sc)
	})

	t.Run("PresignAndGG20", func(t *testing.T) {
		// Each initiator signs from its own pool.
		for _, s := range []*e2eSite{a, b} {
			var res presignResult
			c.ok(t, nil, &res, "presign", "--home", s.home, "--key", key.KeyID, "--count", "1", "--signers", a.peerID+","+b.peerID)
			if res.Made != 1 || res.Ready != 1 || res.Path != "m" || res.Initiator != s.peerID {
				t.Fatalf("presign on %s: %+v", s.peerID, res)
			}
		}
		sign(t, a, "gg20 one", "gg20", a, b)
		if sig := sign(t, b, "gg20 two", "auto", a, b); sig.Protocol != "gg20" {
			t.Fatalf("auto signed with %s while the pool held a presignature", sig.Protocol)
		}
		var st statusResult
		c.ok(t, nil, &st, "status", "--home", a.home)
		if len(st.Keys) != 1 || len(st.Keys[0].Pools) != 2 {
			t.Fatalf("status after two GG20 signatures: %+v", st.Keys)
		}
		for _, p := range st.Keys[0].Pools {
			if p.Ready != 0 || p.Used != 1 || (string(p.Initiator) != a.peerID && string(p.Initiator) != b.peerID) {
				t.Fatalf("status after two GG20 signatures, one from each site's pool: %+v", st.Keys)
			}
		}
		// An empty pool: gg20 refuses, auto falls back to gg18.
		c.fails(t, nil, 1, codeNoPresignature, "sign", "--home", a.home, "--key", key.KeyID, "--digest", strings.Repeat("11", 32),
			"--signers", a.peerID+","+b.peerID, "--protocol", "gg20")
		sign(t, a, "gg18 again", "gg18", a, b)
	})

	t.Run("SignPSBT", func(t *testing.T) {
		packet, prev := regtestPSBT(t, key.BTCAddress)
		var buf bytes.Buffer
		if err := packet.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		// The PSBT goes through a file, as operators pass it.
		file := filepath.Join(root, "spend.psbt")
		if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(buf.Bytes())), 0o600); err != nil {
			t.Fatal(err)
		}
		var res signPSBTResult
		c.ok(t, nil, &res, "sign-psbt", "--home", b.home, "--key", key.KeyID, "--psbt", "@"+file, "--signers", b.peerID+","+sc.peerID)
		if !res.Complete || len(res.SignedInputs) != 1 {
			t.Fatalf("sign-psbt: %+v", res)
		}
		raw, _ := hex.DecodeString(res.TxHex)
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(raw)); err != nil || tx.TxHash().String() != res.TxID {
			t.Fatalf("tx_hex/txid: %v", err)
		}
		fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
		vm, err := txscript.NewEngine(prev.PkScript, &tx, 0, txscript.StandardVerifyFlags, nil,
			txscript.NewTxSigHashes(&tx, fetcher), prev.Value, fetcher)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.Execute(); err != nil {
			t.Fatalf("btcd's script engine rejects the input: %v", err)
		}
		// The binary form works too, and signing the same PSBT again
		// gives the same transaction ID (the signature is not part of it).
		bin := filepath.Join(root, "spend.bin.psbt")
		if err := os.WriteFile(bin, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		var again signPSBTResult
		c.ok(t, nil, &again, "sign-psbt", "--home", a.home, "--key", key.KeyID, "--psbt", "@"+bin, "--signers", a.peerID+","+b.peerID)
		if !again.Complete || again.TxID != res.TxID {
			t.Fatalf("binary PSBT: %+v, want txid %s", again, res.TxID)
		}
	})

	t.Run("AuditShowOpensTheIntent", func(t *testing.T) {
		// b authorized the PSBT above: the entry names the intent by its
		// hash, its sealed detail holds the whole intent, which only the
		// running site opens, for an auditor but not a requester.
		var seq uint64
		var fields map[string]string
		for _, line := range auditEntries(t, c, b.home) {
			var e struct {
				Seq    uint64            `json:"seq"`
				Type   string            `json:"type"`
				Fields map[string]string `json:"fields"`
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatal(err)
			}
			if e.Type == "sign.authorize" && e.Fields["kind"] == "bitcoin-psbt" {
				seq, fields = e.Seq, e.Fields
			}
		}
		if fields == nil {
			t.Fatal("b's audit log has no sign.authorize entry for the PSBT")
		}
		dir := t.TempDir()
		auditor, err := writeOperatorKey(dir, "audrey")
		if err != nil {
			t.Fatal(err)
		}
		requester, err := writeOperatorKey(dir, "rita")
		if err != nil {
			t.Fatal(err)
		}
		var ops operatorsResult
		c.ok(t, nil, &ops, "operators", "add", "--home", b.home, "--name", "audrey", "--key", auditor.pub, "--roles", roleAuditor)
		c.ok(t, nil, &ops, "operators", "add", "--home", b.home, "--name", "rita", "--key", requester.pub, "--roles", roleRequester)
		asAuditor := []string{envOperatorKey + "=" + auditor.key}
		entry := strconv.FormatUint(seq, 10)

		var res auditShowResult
		c.ok(t, asAuditor, &res, "audit", "show", "--home", b.home, "--entry", entry)
		var sd keyquorum.SignDetail
		if err := json.Unmarshal(res.Detail, &sd); err != nil {
			t.Fatalf("detail %s: %v", res.Detail, err)
		}
		in, err := policy.ParseIntent(sd.Intent)
		if err != nil {
			t.Fatalf("the detail's intent does not parse: %v", err)
		}
		h := in.Hash()
		if hex.EncodeToString(h[:]) != fields["intent"] || in.Kind() != policy.KindBitcoinPSBT || sd.SummaryText == "" ||
			!strings.Contains(string(res.Entry), `"intent":"`+fields["intent"]+`"`) {
			t.Fatalf("audit show %s: entry %s, detail kind %s, intent hash %x, summary %q; want the PSBT intent %s",
				entry, res.Entry, in.Kind(), h, sd.SummaryText, fields["intent"])
		}
		if r := c.run(t, asAuditor, "audit", "show", "--home", b.home, "--entry", entry); r.code != 0 ||
			!strings.Contains(r.stdout, "summary:") || !strings.Contains(r.stdout, `"intent_hash": "`+fields["intent"]+`"`) {
			t.Fatalf("audit show (text): exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		c.fails(t, []string{envOperatorKey + "=" + requester.key}, 1, codeForbidden, "audit", "show", "--home", b.home, "--entry", entry)
		c.fails(t, asAuditor, 1, codeNotFound, "audit", "show", "--home", b.home, "--entry", "999999")
		// Opening the detail was recorded, naming the auditor.
		reads := 0
		for _, line := range auditEntries(t, c, b.home) {
			if strings.Contains(line, `"type":"api.detail-read"`) && strings.Contains(line, `"operator":"audrey"`) {
				reads++
			}
		}
		if reads != 2 {
			t.Errorf("api.detail-read entries by audrey: %d, want 2", reads)
		}
	})

	t.Run("SignEthereum", func(t *testing.T) {
		chainID := big.NewInt(1337)
		to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 3, To: &to, Value: big.NewInt(1e16),
			Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9)})
		unsigned, _ := tx.MarshalBinary()
		var res signEthResult
		c.ok(t, nil, &res, "sign-eth", "--home", sc.home, "--key", key.KeyID, "--tx", "0x"+hex.EncodeToString(unsigned),
			"--chain-id", "1337", "--signers", a.peerID+","+sc.peerID)
		raw, _ := hex.DecodeString(res.RawTx)
		var signed types.Transaction
		if err := signed.UnmarshalBinary(raw); err != nil {
			t.Fatal(err)
		}
		from, err := types.Sender(types.NewLondonSigner(chainID), &signed)
		if err != nil || from.Hex() != key.ETHAddress || res.From != key.ETHAddress || "0x"+res.Hash != signed.Hash().Hex() {
			t.Fatalf("sender %s (%v), result %+v, want %s", from.Hex(), err, res, key.ETHAddress)
		}
	})

	t.Run("BadInputChangesNothing", func(t *testing.T) {
		before := snapshot(t, homes...)
		auditBefore := auditEntries(t, c, a.home)
		digest := strings.Repeat("ab", 32)
		k := key.KeyID
		to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
		chain1, _ := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), To: &to, Gas: 21000, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(1)}).MarshalBinary()
		validTx := hex.EncodeToString(chain1)
		cases := []struct {
			name string
			exit int
			code string
			args []string
		}{
			{"unknown key", 1, codeUnknownKey, []string{"sign", "--home", a.home, "--key", strings.Repeat("0", 32), "--digest", digest}},
			{"unknown key, presign", 1, codeUnknownKey, []string{"presign", "--home", a.home, "--key", strings.Repeat("0", 32), "--count", "1"}},
			{"short digest", 1, codeBadRequest, []string{"sign", "--home", a.home, "--key", k, "--digest", "abcd"}},
			{"long digest", 1, codeBadRequest, []string{"sign", "--home", a.home, "--key", k, "--digest", digest + "00"}},
			{"non-hex digest", 1, codeBadRequest, []string{"sign", "--home", a.home, "--key", k, "--digest", strings.Repeat("zz", 32)}},
			{"zero digest", 1, codeBadRequest, []string{"sign", "--home", a.home, "--key", k, "--digest", strings.Repeat("00", 32)}},
			{"hardened path", 1, codeBadRequest, []string{"sign", "--home", a.home, "--key", k, "--digest", digest, "--path", "m/0'/1"}},
			{"unknown protocol", 1, codeBadRequest, []string{"sign", "--home", a.home, "--key", k, "--digest", digest, "--protocol", "gg99"}},
			{"signer outside the committee", 1, codeNotInCommittee, []string{"sign", "--home", a.home, "--key", k, "--digest", digest, "--signers", a.peerID + ",not-a-peer"}},
			{"garbage PSBT", 1, codeBadRequest, []string{"sign-psbt", "--home", a.home, "--key", k, "--psbt", "garbage"}},
			{"truncated PSBT", 1, codeBadRequest, []string{"sign-psbt", "--home", a.home, "--key", k, "--psbt", "cHNidP8BAHECAAAAAQ=="}},
			{"PSBT file missing", 2, codeBadRequest, []string{"sign-psbt", "--home", a.home, "--key", k, "--psbt", "@" + filepath.Join(root, "missing.psbt")}},
			{"non-hex tx", 1, codeBadRequest, []string{"sign-eth", "--home", a.home, "--key", k, "--tx", "0xzz", "--chain-id", "1"}},
			{"truncated tx", 1, codeBadRequest, []string{"sign-eth", "--home", a.home, "--key", k, "--tx", "0x02c0", "--chain-id", "1"}},
			{"bad chain ID", 1, codeBadRequest, []string{"sign-eth", "--home", a.home, "--key", k, "--tx", validTx, "--chain-id", "one"}},
			{"wrong chain ID", 1, codeBadRequest, []string{"sign-eth", "--home", a.home, "--key", k, "--tx", validTx, "--chain-id", "5"}},
			{"cut tx", 1, codeBadRequest, []string{"sign-eth", "--home", a.home, "--key", k, "--tx", validTx[:len(validTx)-4], "--chain-id", "1"}},
			{"keygen 4-of-3", 1, codeBadRequest, []string{"keygen", "--home", a.home, "--threshold", "4", "--parties", a.peerID + "," + b.peerID + "," + sc.peerID}},
			{"missing flag", 2, codeBadRequest, []string{"sign", "--home", a.home, "--key", k}},
			{"unknown flag", 2, codeBadRequest, []string{"sign", "--home", a.home, "--key", k, "--digest", digest, "--fast"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c.fails(t, nil, tc.exit, tc.code, tc.args...)
			})
		}
		sameSnapshot(t, "refused requests", before, snapshot(t, homes...))
		// The audit log only gained the API calls and the refusals of
		// requests that got as far as the signing checks, and still
		// verifies.
		calls := 0
		for _, e := range auditEntries(t, c, a.home)[len(auditBefore):] {
			switch {
			case strings.Contains(e, `"type":"api.call"`):
				calls++
			case strings.Contains(e, `"type":"sign.refuse"`):
			default:
				t.Errorf("a refused request added the audit entry %s", e)
			}
		}
		if calls == 0 {
			t.Error("the refused API calls are not in the audit log")
		}
	})

	t.Run("Unauthorized", func(t *testing.T) {
		before := snapshot(t, homes...)
		apiPath := filepath.Join(a.home, apiFile)
		saved, err := os.ReadFile(apiPath)
		if err != nil {
			t.Fatal(err)
		}
		var api apiInfo
		if err := json.Unmarshal(saved, &api); err != nil || api.Network != "unix" || api.Addr != filepath.Join(a.home, apiSocket) {
			t.Fatalf("api.json of a: %v %v", api, err)
		}
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", api.Addr)
		}}}
		for _, auth := range []string{"", "Bearer ", "Bearer " + strings.Repeat("0", 64), "Basic abc"} {
			req, _ := http.NewRequest(http.MethodPost, "http://kqnode"+pathSign, strings.NewReader(`{"key_id":"`+key.KeyID+`","digest":"`+strings.Repeat("ab", 32)+`"}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var eb errorBody
			json.NewDecoder(resp.Body).Decode(&eb)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || eb.Code != codeUnauthenticated {
				t.Errorf("Authorization %q: %d %+v, want 401 unauthenticated", auth, resp.StatusCode, eb)
			}
		}
		// A client signing with a key that is no operator of the site.
		stranger, err := writeOperatorKey(t.TempDir(), "stranger")
		if err != nil {
			t.Fatal(err)
		}
		c.fails(t, []string{envOperatorKey + "=" + stranger.key}, 1, codeUnauthenticated, "status", "--home", a.home)
		// An endpoint file others can read is refused before it is used.
		os.Chmod(apiPath, 0o644)
		eb := c.fails(t, nil, 1, codeUnsafeFile, "status", "--home", a.home)
		os.Chmod(apiPath, 0o600)
		if !strings.Contains(eb.Error, "chmod 600 "+apiPath) {
			t.Errorf("world-readable api.json: %s", eb.Error)
		}
		sameSnapshot(t, "unauthorized requests", before, snapshot(t, homes...))
		refused := 0
		for _, e := range auditEntries(t, c, a.home) {
			if strings.Contains(e, `"type":"api.refused"`) {
				refused++
			}
		}
		if refused == 0 {
			t.Error("the refused API calls are not in a's audit log")
		}
	})

	t.Run("APIOnSocketOrLoopbackOnly", func(t *testing.T) {
		var st statusResult
		c.ok(t, nil, &st, "status", "--home", a.home)
		if st.API != "unix:"+filepath.Join(a.home, apiSocket) {
			t.Errorf("API of a: %q, want its home's socket", st.API)
		}
		fi, err := os.Lstat(filepath.Join(a.home, apiSocket))
		if err != nil || fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket of a: %v %v, want a socket with mode 0600", fi.Mode(), err)
		}
		c.ok(t, nil, &st, "status", "--home", b.home)
		hostPort, ok := strings.CutPrefix(st.API, "https://")
		host, port, err := net.SplitHostPort(hostPort)
		if !ok || err != nil || host != "127.0.0.1" {
			t.Fatalf("API address of b %q", st.API)
		}
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			t.Fatal(err)
		}
		tried := 0
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			tried++
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(ipn.IP.String(), port), 2*time.Second)
			if err == nil {
				conn.Close()
				t.Errorf("the control API answers on %s", ipn.IP)
			}
		}
		t.Logf("API %s refused on %d non-loopback addresses", st.API, tried)
		// Plain HTTP on the TLS port gets nothing useful, let alone a token.
		resp, err := http.Get("http://" + hostPort + pathStatus)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("plain HTTP on %s answered 200", hostPort)
			}
		}
	})

	t.Run("Status", func(t *testing.T) {
		var st statusResult
		c.ok(t, nil, &st, "status", "--home", b.home)
		if st.PeerID != "" && string(st.PeerID) != b.peerID {
			t.Fatalf("status of b names %s", st.PeerID)
		}
		if len(st.Peers) != 2 || len(st.Keys) != 1 || st.Keys[0].KeyID != key.KeyID || st.PreParams.Ready != 1 ||
			st.PreParams.Generation || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "TEST FIXTURES") {
			t.Fatalf("status: %+v", st)
		}
		r := c.run(t, nil, "status", "--home", b.home)
		if r.code != 0 || !strings.Contains(r.stdout, key.KeyID) || !strings.Contains(r.stdout, "2-of-3") {
			t.Fatalf("text status: %d %s %s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("KilledSiteIsNamedThenRestarts", func(t *testing.T) {
		if err := sc.proc.Kill(); err != nil {
			t.Fatal(err)
		}
		sign(t, a, "c is down", "gg18", a, b)
		eb := c.fails(t, nil, 1, codeUnreachable, "sign", "--home", a.home, "--key", key.KeyID, "--digest", strings.Repeat("cd", 32),
			"--signers", a.peerID+","+sc.peerID, "--protocol", "gg18")
		if !slices.Contains(eb.Parties, sc.peerID) || !strings.Contains(eb.Error, sc.peerID) {
			t.Fatalf("the error does not name the killed site %s: %+v", sc.peerID, eb)
		}
		// A stale api.json (kill -9 left it) makes clients say the site is not running.
		c.fails(t, nil, 1, codeNotRunning, "status", "--home", sc.home)
		start(sc)
		sign(t, a, "c is back", "gg18", a, sc)
		sign(t, sc, "c signs again", "gg18", sc, b)
	})

	t.Run("CrashedTCPSiteIsNotImpersonated", func(t *testing.T) {
		var api apiInfo
		data, err := os.ReadFile(filepath.Join(b.home, apiFile))
		if err != nil || json.Unmarshal(data, &api) != nil || api.Network != "tcp" {
			t.Fatalf("api.json of b: %v", err)
		}
		if err := b.proc.Kill(); err != nil {
			t.Fatal(err)
		}
		attacker := anyOtherProcess(t)
		ictx, icancel := context.WithCancel(ctx)
		defer icancel()
		imp := attacker.command(ictx, "impostor", api.Addr)
		var out syncBuffer
		imp.Stdout = &out
		if err := imp.Start(); err != nil {
			t.Fatal(err)
		}
		defer imp.Wait()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "listening"); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the impostor did not listen on %s", api.Addr)
			}
		}
		eb := c.fails(t, nil, 1, codeNotAuthenticated, "status", "--home", b.home)
		c.fails(t, nil, 1, codeNotAuthenticated, "sign", "--home", b.home, "--key", key.KeyID, "--digest", strings.Repeat("ef", 32))
		icancel()
		imp.Wait()
		if strings.Contains(out.String(), "auth: Bearer") {
			t.Errorf("the program on b's port (uid %d) got a token: %s", attacker.uid, out.String())
		}
		if !strings.Contains(eb.Error, api.Addr) || !strings.Contains(eb.Error, "kqnode run --home "+b.home) {
			t.Errorf("the error does not name the address and the fix: %s", eb.Error)
		}
		start(b)
		sign(t, b, "b is back", "gg18", a, b)
	})

	t.Run("GracefulStop", func(t *testing.T) {
		for _, s := range []*e2eSite{sc, b, a} {
			if err := s.proc.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := s.proc.Wait(wctx)
			cancel()
			if err != nil {
				t.Fatalf("site %s after SIGTERM: %v", s.name, err)
			}
			if _, err := os.Stat(filepath.Join(s.home, apiFile)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("site %s left %s after a graceful stop", s.name, apiFile)
			}
		}
		c.fails(t, nil, 1, codeNotRunning, "status", "--home", a.home)
	})

	t.Run("AuditorVerifiesACopyWithWitnessKeys", func(t *testing.T) {
		// c stopped first, while a and b ran: they cosigned its last
		// checkpoint. An auditor holds a copy of c's log and the three
		// sites' public keys as init printed them.
		keys := make(map[*e2eSite]string)
		var lines []string
		for _, s := range sites {
			cfg, err := home{dir: s.home}.loadConfig()
			if err != nil {
				t.Fatal(err)
			}
			keys[s] = cfg.IdentityPublicKey
			lines = append(lines, s.peerID+" "+cfg.IdentityPublicKey)
		}
		witnessFile := filepath.Join(root, "witness-keys")
		if err := os.WriteFile(witnessFile, []byte("# the committee\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(root, "copy-of-c-audit")
		if err := os.CopyFS(cp, os.DirFS(filepath.Join(sc.home, "audit"))); err != nil {
			t.Fatal(err)
		}
		args := []string{"audit", "verify", "--dir", cp, "--peer-id", sc.peerID, "--public-key", keys[sc]}
		var v auditVerifyResult
		c.ok(t, nil, &v, append(args, "--witness-keys", witnessFile)...)
		for _, w := range []*e2eSite{a, b} {
			if size := v.CosignedBy[keyquorum.WitnessName(tss.PartyID(w.peerID))]; size == 0 || size > v.Entries {
				t.Errorf("c's log cosigned by %s up to %d entries (of %d); want its last checkpoint", w.name, size, v.Entries)
			}
		}
		if len(v.CosignedBy) != 2 {
			t.Errorf("cosigned_by %v: want a and b only (c does not witness itself)", v.CosignedBy)
		}

		// A witness the auditor expects but whose cosignature is missing
		// is named.
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := k.PublicKey.Bytes()
		stranger, _ := transport.PartyIDFromPublicKey(&k.PublicKey)
		more := filepath.Join(root, "witness-keys-more")
		if err := os.WriteFile(more, []byte(strings.Join(lines, "\n")+"\n"+hex.EncodeToString(raw)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		eb := c.fails(t, nil, 1, codeAuditInvalid, append(args, "--witness-keys", more)...)
		if !strings.Contains(eb.Error, keyquorum.WitnessName(stranger)) || !strings.Contains(eb.Error, "cosigned none") {
			t.Errorf("missing cosignature: %s", eb.Error)
		}
		// A key that is not the named peer's is a usage error.
		wrong := filepath.Join(root, "witness-keys-wrong")
		if err := os.WriteFile(wrong, []byte(a.peerID+" "+keys[b]+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		eb = c.fails(t, nil, 2, codeBadRequest, append(args, "--witness-keys", wrong)...)
		if !strings.Contains(eb.Error, "line 1") || !strings.Contains(eb.Error, "not "+a.peerID) {
			t.Errorf("mismatched witness key: %s", eb.Error)
		}
	})
}

// writePeers writes the committee's peer file.
func writePeers(t *testing.T, dir string, sites []*e2eSite) string {
	t.Helper()
	type entry struct {
		PeerID string   `json:"peer_id"`
		Addrs  []string `json:"addrs"`
	}
	var es []entry
	for _, s := range sites {
		es = append(es, entry{PeerID: s.peerID, Addrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", s.port)}})
	}
	b, _ := json.Marshal(es)
	p := filepath.Join(dir, "peers.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// regtestPSBT spends a made-up 0.01 BTC output paid to addr, sending
// 0.0099 BTC to an address nobody holds a key for (kqnode example psbt's
// transaction, without change).
func regtestPSBT(t *testing.T, addr string) (*psbt.Packet, *wire.TxOut) {
	t.Helper()
	net := &chaincfg.RegressionNetParams
	from, err := btcutil.DecodeAddress(addr, net)
	if err != nil {
		t.Fatal(err)
	}
	dest, err := exampleDestination("", net)
	if err != nil {
		t.Fatal(err)
	}
	packet, err := examplePSBT(net, from, dest, 990_000, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return packet, packet.Inputs[0].WitnessUtxo
}

// auditEntries returns a site's audit entries (canonical JSON, oldest
// first) after checking that its log verifies.
func auditEntries(t *testing.T, c cli, home string) []string {
	t.Helper()
	var v auditVerifyResult
	c.ok(t, nil, &v, "audit", "verify", "--home", home)
	r := c.run(t, nil, "audit", "export", "--home", home)
	if r.code != 0 {
		t.Fatalf("audit export: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if uint64(len(lines)) != v.Entries {
		t.Fatalf("audit export printed %d entries, verify counted %d", len(lines), v.Entries)
	}
	return lines
}

// buildCLI builds kqnode and returns it with a fresh root directory.
// keygen2of3 has site a propose a 2-of-3 key of a, b and c and returns
// it.
func keygen2of3(t testing.TB, c cli, a, b, sc *e2eSite) keygenResult {
	t.Helper()
	var key keygenResult
	c.ok(t, nil, &key, "keygen", "--home", a.home, "--threshold", "2", "--parties", a.peerID+","+b.peerID+","+sc.peerID)
	return key
}

func buildCLI(ctx context.Context, t testing.TB) (cli, string) {
	t.Helper()
	bin, err := proctest.Build(ctx, t.TempDir(), "github.com/keyquorum/keyquorum/examples/kqnode", false)
	if err != nil {
		t.Fatal(err)
	}
	return cli{bin: bin}, t.TempDir()
}

// initSites makes sites a, b and c under root, each with its own SoftHSM2
// token, and runs kqnode init for each, importing perSite pre-parameter
// test fixtures (distinct per site).
func initSites(t testing.TB, c cli, root string, perSite int) []*e2eSite {
	t.Helper()
	var sites []*e2eSite
	for i, name := range []string{"a", "b", "c"} {
		hsmRoot := filepath.Join(root, "hsm-"+name)
		if err := os.MkdirAll(hsmRoot, 0o700); err != nil {
			t.Fatal(err)
		}
		d, err := softhsm.CreateDir(hsmRoot)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := d.CreateToken()
		if err != nil {
			t.Fatal(err)
		}
		s := &e2eSite{name: name, hsm: d, token: tok, home: filepath.Join(root, "home-"+name),
			pinFile: tok.PINFile(t), port: freePort(t)}
		var fx []string
		for j := range perSite {
			fx = append(fx, fixtureFile(perSite*i+j))
		}
		var res initResult
		c.ok(t, s.env(), &res, append([]string{"init", "--home", s.home, "--module", d.Module, "--token", tok.Label,
			"--pin-source", "file:" + s.pinFile, "--preparams-fixtures", strings.Join(fx, ",")}, testAdminArgs()...)...)
		if res.PeerID == "" || len(res.IdentityPublicKey) != 130 || res.PreParamsReady != perSite || res.FixturesImported != perSite {
			t.Fatalf("init %s: %+v", name, res)
		}
		s.peerID = res.PeerID
		sites = append(sites, s)
	}
	return sites
}

func fixtureFile(i int) string {
	return filepath.Join(fixtures.Dir(), "preparams", fmt.Sprintf("preparams-%02d.json", i))
}

// runSites starts a kqnode run process for each site with the given
// policy and extra flags, and waits for each one's ready line.
func runSites(ctx context.Context, t testing.TB, c cli, cluster *proctest.Cluster, peerFile, policy string, sites []*e2eSite, extra ...string) {
	t.Helper()
	for _, s := range sites {
		args := append([]string{"run", "--home", s.home, "--peers", peerFile, "--policy", policy,
			"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", s.port), "--preparams-target", "0"}, extra...)
		p, err := cluster.Start(ctx, proctest.Spec{Name: "site-" + s.name, Path: c.bin, Env: s.env(), Args: args})
		if err != nil {
			t.Fatal(err)
		}
		s.proc = p
		waitReady(ctx, t, s)
	}
}

func waitReady(ctx context.Context, t testing.TB, s *e2eSite) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := s.proc.WaitForLine(wctx, `{"ready":true`); err != nil {
		t.Fatal(err)
	}
}
