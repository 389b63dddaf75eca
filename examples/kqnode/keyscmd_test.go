package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyquorum/keyquorum/internal/proctest"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// BIP-32 test vector 2 (bips/bip-0032.mediawiki, "Test vector 2"): the
// extended public keys of m and of its first non-hardened child m/0.
const (
	bip32Vector2M  = "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB"
	bip32Vector2M0 = "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH"
)

// serializeXPub writes BIP-32's published extended public keys: version
// bytes, depth, parent fingerprint and child number all count.
func TestSerializeXPub_MatchesBIP32Vector(t *testing.T) {
	master, err := hdkeychain.NewKeyFromString(bip32Vector2M)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := master.ECPubKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := secp256k1.ParsePubKey(pub.SerializeCompressed())
	if err != nil {
		t.Fatal(err)
	}
	x := wallet.ExtendedPublicKey{Key: key, ChainCode: master.ChainCode()}
	for _, tc := range []struct {
		path hd.Path
		want string
	}{{hd.Path{}, bip32Vector2M}, {hd.Path{0}, bip32Vector2M0}} {
		got, err := serializeXPub(x, tc.path, chaincfg.MainNetParams.HDPublicKeyID)
		if err != nil || got != tc.want {
			t.Errorf("xpub of %s = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
	// The test networks' version (0x043587cf) makes a tpub of the same key.
	got, err := serializeXPub(x, hd.Path{0}, chaincfg.RegressionNetParams.HDPublicKeyID)
	if err != nil || !strings.HasPrefix(got, "tpub") {
		t.Errorf("regtest xpub of m/0 = %q, %v; want a tpub", got, err)
	}
}

// A hardened or malformed path, or one deeper than BIP-32 can serialise,
// is an error, not a panic or a wrapped-around depth byte.
func TestSerializeXPub_RefusesBadPaths(t *testing.T) {
	key := secp256k1.NewPrivateKey(new(secp256k1.ModNScalar).SetInt(7)).PubKey()
	x := wallet.ExtendedPublicKey{Key: key, ChainCode: make([]byte, 32)}
	if _, err := serializeXPub(x, hd.Path{hd.HardenedOffset}, chaincfg.MainNetParams.HDPublicKeyID); err == nil {
		t.Error("a hardened step was serialised")
	}
	if _, err := serializeXPub(x, make(hd.Path, hd.MaxDepth+1), chaincfg.MainNetParams.HDPublicKeyID); err == nil {
		t.Error("a path of 256 levels was serialised")
	}
}

// independent derives a key's child with btcutil's hdkeychain and its
// addresses with btcutil and go-ethereum, not with keyquorum's code.
func independent(t *testing.T, pubHex, ccHex string, params *chaincfg.Params, path ...uint32) (xpub, pub, btc, eth string) {
	t.Helper()
	pk, _ := hex.DecodeString(pubHex)
	cc, _ := hex.DecodeString(ccHex)
	k := hdkeychain.NewExtendedKey(params.HDPublicKeyID[:], pk, cc, []byte{0, 0, 0, 0}, 0, 0, false)
	for _, i := range path {
		var err error
		if k, err = k.Derive(i); err != nil {
			t.Fatal(err)
		}
	}
	ec, err := k.ECPubKey()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(ec.SerializeCompressed()), params)
	if err != nil {
		t.Fatal(err)
	}
	ethAddr := common.BytesToAddress(crypto.Keccak256(ec.SerializeUncompressed()[1:])[12:])
	return k.String(), hex.EncodeToString(ec.SerializeCompressed()), addr.EncodeAddress(), ethAddr.Hex()
}

// keys list, keys show and pools list on three real sites: the key and its
// committee by name, the public key, addresses and xpub at m and m/0/1 the
// same as an independent derivation gives, the error codes of an unknown
// key and a bad path, and the pools of two initiators each seen from one
// site with the right owner.
func TestCLI_KeysAndPools(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 1)
	a, b, sc := sites[0], sites[1], sites[2]
	cluster := proctest.New(t)
	runSites(ctx, t, c, cluster, writeNamedPeers(t, root, sites), testPolicyFile(t), sites)

	key := keygen2of3(t, c, a, b, sc)
	// The committee in the order the site lists it (by peer ID), by name.
	byID := map[string]string{a.peerID: "site-a", b.peerID: "site-b", sc.peerID: "site-c"}
	var names []string
	for _, p := range tss.SortParties(partyIDs([]string{a.peerID, b.peerID, sc.peerID})) {
		names = append(names, byID[string(p)])
	}
	committeeNames := strings.Join(names, ",")

	t.Run("KeysList", func(t *testing.T) {
		var list keysListResult
		c.ok(t, nil, &list, "keys", "list", "--home", b.home)
		if len(list.Keys) != 1 {
			t.Fatalf("keys list: %+v; want the one key", list)
		}
		k := list.Keys[0]
		_, _, btc, eth := independent(t, key.PublicKey, key.ChainCode, &chaincfg.RegressionNetParams)
		if k.KeyID != key.KeyID || k.Threshold != 2 || k.Parties != 3 || k.Epoch != 1 || k.Created.IsZero() ||
			k.PublicKey != key.PublicKey || k.ChainCode != key.ChainCode || k.Network != "regtest" ||
			k.BTCAddress != btc || k.ETHAddress != eth || k.BTCAddress != key.BTCAddress || k.ETHAddress != key.ETHAddress {
			t.Fatalf("keys list: %+v; keygen said %+v, independent derivation %s %s", k, key, btc, eth)
		}
		names := map[string]string{}
		for _, m := range k.Committee {
			names[m.PeerID] = m.Name
		}
		if len(names) != 3 || names[a.peerID] != "site-a" || names[b.peerID] != "site-b" || names[sc.peerID] != "site-c" {
			t.Fatalf("keys list committee: %+v", k.Committee)
		}
		r := c.run(t, nil, "keys", "list", "--home", b.home)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "KEY ") ||
			!regexp.MustCompile(`^`+key.KeyID+` +- +2-of-3 +1 +\S+ +`+key.PublicKey+` +`+btc+` +`+eth+` +`+committeeNames+`$`).MatchString(lines[1]) {
			t.Fatalf("human keys list (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("KeysShow", func(t *testing.T) {
		for _, tc := range []struct {
			path, network string
			params        *chaincfg.Params
			steps         []uint32
			prefix        string
		}{
			{"m", "regtest", &chaincfg.RegressionNetParams, nil, "tpub"},
			{"m/0/1", "regtest", &chaincfg.RegressionNetParams, []uint32{0, 1}, "tpub"},
			{"m/0/1", "mainnet", &chaincfg.MainNetParams, []uint32{0, 1}, "xpub"},
			{"m/7", "testnet", &chaincfg.TestNet3Params, []uint32{7}, "tpub"},
		} {
			var show keyShowResult
			c.ok(t, nil, &show, "keys", "show", "--home", sc.home, "--key", key.KeyID, "--path", tc.path, "--network", tc.network)
			xpub, pub, btc, eth := independent(t, key.PublicKey, key.ChainCode, tc.params, tc.steps...)
			d := show.Derived
			if d.Path != tc.path || d.PublicKey != pub || d.BTCAddress != btc || d.ETHAddress != eth || d.XPub != xpub || !strings.HasPrefix(d.XPub, tc.prefix) {
				t.Errorf("keys show %s on %s: %+v; independent derivation: xpub %s, key %s, %s, %s", tc.path, tc.network, d, xpub, pub, btc, eth)
			}
			if show.KeyID != key.KeyID || show.PublicKey != key.PublicKey || show.Network != tc.network || len(show.Committee) != 3 {
				t.Errorf("keys show %s: key %+v", tc.path, show.keyJSON)
			}
		}
		r := c.run(t, nil, "keys", "show", "--home", sc.home, "--key", key.KeyID, "--path", "m/0/1")
		xpub, _, _, _ := independent(t, key.PublicKey, key.ChainCode, &chaincfg.RegressionNetParams, 0, 1)
		if r.code != 0 || !regexp.MustCompile(`(?m)^path xpub: +`+xpub+`$`).MatchString(r.stdout) ||
			!regexp.MustCompile(`(?m)^committee: +`+committeeNames+`$`).MatchString(r.stdout) {
			t.Fatalf("human keys show (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		other := strings.Repeat("ab", 16)
		eb := c.fails(t, nil, 1, codeUnknownKey, "keys", "show", "--home", a.home, "--key", other)
		if !strings.Contains(eb.Error, other) || !strings.Contains(eb.Error, key.KeyID) {
			t.Errorf("unknown key: %q does not name the key asked for and the ones held", eb.Error)
		}
		c.fails(t, nil, 1, codeUnknownKey, "pools", "list", "--home", a.home, "--key", other)
		for _, path := range []string{"m/0'/1", "m/x", "0/1", "m/2147483648"} {
			c.fails(t, nil, 1, codeBadRequest, "keys", "show", "--home", a.home, "--key", key.KeyID, "--path", path)
		}
		c.fails(t, nil, 1, codeBadRequest, "keys", "show", "--home", a.home, "--key", "not-a-key")
		c.fails(t, nil, 1, codeBadRequest, "keys", "show", "--home", a.home, "--key", key.KeyID, "--network", "moon")
		c.fails(t, nil, 2, codeBadRequest, "keys", "show", "--home", a.home)
		c.fails(t, nil, 2, codeBadRequest, "keys", "frobnicate", "--home", a.home)
		c.fails(t, nil, 2, codeBadRequest, "pools", "drain", "--home", a.home)
	})

	t.Run("PoolsList", func(t *testing.T) {
		ab := a.peerID + "," + b.peerID
		counts := map[*e2eSite]int{a: 1, b: 2}
		for _, s := range []*e2eSite{a, b} {
			var res presignResult
			c.ok(t, nil, &res, "presign", "--home", s.home, "--key", key.KeyID, "--count", strconv.Itoa(counts[s]), "--signers", ab, "--path", "m/0/1")
			if res.Made != counts[s] || res.Initiator != s.peerID {
				t.Fatalf("presign on %s: %+v", s.name, res)
			}
		}
		var list poolsListResult
		c.ok(t, nil, &list, "pools", "list", "--home", a.home)
		var all poolsListResult
		c.ok(t, nil, &all, "pools", "list", "--home", a.home, "--key", key.KeyID)
		if list.PeerID != a.peerID || len(list.Pools) != 2 || len(all.Pools) != 2 || list.Names[b.peerID] != "site-b" {
			t.Fatalf("pools list on site a: %+v (with --key: %+v); want two pools", list, all)
		}
		for _, p := range list.Pools {
			s := map[string]*e2eSite{a.peerID: a, b.peerID: b}[p.Initiator]
			if s == nil || p.Own != (s == a) || p.KeyID != key.KeyID || p.Path != "m/0/1" || strings.Join(p.Signers, ",") != strings.Join(partyStrings(tss.SortParties(partyIDs([]string{a.peerID, b.peerID}))), ",") ||
				p.Ready != counts[s] || p.Made != uint64(counts[s]) || p.Used != 0 || p.Burned != 0 || p.Discarded != 0 || p.Error != "" {
				t.Errorf("pool on site a: %+v", p)
			}
		}
		// Site c holds no part of them.
		var none poolsListResult
		c.ok(t, nil, &none, "pools", "list", "--home", sc.home)
		if len(none.Pools) != 0 {
			t.Errorf("pools list on site c: %+v; want none", none.Pools)
		}
		r := c.run(t, nil, "pools", "list", "--home", a.home)
		if r.code != 0 || len(strings.Split(strings.TrimSpace(r.stdout), "\n")) != 3 ||
			!regexp.MustCompile(`(?m)^`+key.KeyID+` +site-[ab],site-[ab] +m/0/1 +site-a \(own\) +0 +1 +0 +0 +1 +0 +0 +0 +0 +-$`).MatchString(r.stdout) ||
			!regexp.MustCompile(`(?m)^`+key.KeyID+` +site-[ab],site-[ab] +m/0/1 +site-b \(held for it\) +- +2 +0 +0 +2 +0 +0 +0 +0 +-$`).MatchString(r.stdout) {
			t.Fatalf("human pools list (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("PoolsTargetAndDrain", func(t *testing.T) {
		// a sizes its own pool, which then fills; a drain empties it on
		// both signers and stops the refill; a drain of b's pool on a
		// discards only a's parts of it.
		ab := a.peerID + "," + b.peerID
		var res poolResult
		c.ok(t, nil, &res, "pools", "target", "--home", a.home, "--key", key.KeyID, "--signers", ab, "--path", "m/0/1", "--target", "3")
		if res.Target != 3 || res.Initiator != a.peerID || res.Path != "m/0/1" {
			t.Fatalf("pools target: %+v", res)
		}
		deadline := time.Now().Add(3 * time.Minute)
		for {
			var list poolsListResult
			c.ok(t, nil, &list, "pools", "list", "--home", b.home, "--key", key.KeyID)
			ready := -1
			for _, p := range list.Pools {
				if p.Initiator == a.peerID && p.Path == "m/0/1" && p.Making == 0 {
					ready = p.Ready
				}
			}
			if ready == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a's pool not filled to its target 3 on b: %+v", list.Pools)
			}
			time.Sleep(250 * time.Millisecond)
		}
		c.ok(t, nil, &res, "pools", "drain", "--home", a.home, "--key", key.KeyID, "--signers", ab, "--path", "m/0/1")
		if res.Drained != 3 || res.CoSigners == nil || !*res.CoSigners || res.Ready != 0 || res.Target != 0 {
			t.Fatalf("pools drain of a's own pool: %+v; want 3 drained on both signers, target 0", res)
		}
		res = poolResult{}
		c.ok(t, nil, &res, "pools", "drain", "--home", a.home, "--key", key.KeyID, "--signers", ab, "--path", "m/0/1", "--initiator", b.peerID)
		if res.Drained != 2 || res.CoSigners != nil || res.Initiator != b.peerID {
			t.Fatalf("pools drain of a's parts of b's pool: %+v; want 2 drained here only", res)
		}
		var list poolsListResult
		c.ok(t, nil, &list, "pools", "list", "--home", b.home, "--key", key.KeyID)
		for _, p := range list.Pools {
			want := map[string]int{a.peerID: 0, b.peerID: 2}[p.Initiator] // b still holds its own two
			if p.Path == "m/0/1" && p.Ready != want {
				t.Errorf("b's view of %s's pool after the drains: %+v; want %d ready", p.Initiator, p, want)
			}
		}
		c.fails(t, nil, 1, codeBadRequest, "pools", "target", "--home", a.home, "--key", key.KeyID, "--target", "10001")
		c.fails(t, nil, 2, codeBadRequest, "pools", "target", "--home", a.home, "--key", key.KeyID)
	})

	t.Run("SignDigestsFromAFile", func(t *testing.T) {
		// One process signs each line in order; a bad line is reported
		// with its number and does not stop the next.
		ab := a.peerID + "," + b.peerID
		var res presignResult
		c.ok(t, nil, &res, "presign", "--home", a.home, "--key", key.KeyID, "--count", "1", "--signers", ab)
		d1, d2 := sha256.Sum256([]byte("line 1")), sha256.Sum256([]byte("line 4"))
		file := filepath.Join(t.TempDir(), "digests")
		text := "# digests to sign\n" + hex.EncodeToString(d1[:]) + "\nnot-hex\n" + hex.EncodeToString(d2[:]) + " m/0/1\n"
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		r := c.run(t, nil, "sign", "--home", a.home, "--key", key.KeyID, "--signers", ab, "--digests", file, "--json")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 1 || len(lines) != 3 || !strings.Contains(r.stderr, "1 of 3 digests not signed") {
			t.Fatalf("sign --digests: exit %d, %d lines:\n%s\n%s", r.code, len(lines), r.stdout, r.stderr)
		}
		var first, third signResult
		var second struct {
			Line int `json:"line"`
			errorBody
		}
		for i, v := range []any{&first, &second, &third} {
			if err := json.Unmarshal([]byte(lines[i]), v); err != nil {
				t.Fatalf("line %d of the output: %v: %s", i+1, err, lines[i])
			}
		}
		if first.Digest != hex.EncodeToString(d1[:]) || first.Protocol != "gg20" || first.Path != "m" ||
			second.Line != 3 || second.Code != codeBadRequest ||
			third.Digest != hex.EncodeToString(d2[:]) || third.Path != "m/0/1" || third.Protocol != "gg18" {
			t.Fatalf("sign --digests results:\n%+v\n%+v\n%+v", first, second, third)
		}
		for _, sr := range []signResult{first, third} {
			pubBytes, _ := hex.DecodeString(sr.PublicKey)
			pub, err := secp256k1.ParsePubKey(pubBytes)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := hex.DecodeString(sr.Digest)
			der, _ := hex.DecodeString(sr.DER)
			if sig, err := secpecdsa.ParseDERSignature(der); err != nil || !sig.Verify(d, pub) {
				t.Fatalf("signature of %s does not verify under %s: %v", sr.Digest, sr.PublicKey, err)
			}
		}
		c.fails(t, nil, 2, codeBadRequest, "sign", "--home", a.home, "--key", key.KeyID, "--digest", hex.EncodeToString(d1[:]), "--digests", file)
	})
}
