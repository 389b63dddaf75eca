package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

// TestCLI_OneSiteDown runs three kqnode processes of a 2-of-3 key, stops
// each site in turn and signs from each of the other two without
// --signers: sign (GG20 from the pool of the live pair), sign-psbt and
// sign-eth all sign with the live pair, without waiting for the stopped
// site. With two sites stopped a request fails at once, naming both. The
// send timeout is ten minutes, so a request that waited for a stopped site
// would not finish within the test's own timeout.
func TestCLI_OneSiteDown(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen and restarts take about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 1)
	peerFile := writePeers(t, root, sites)
	cluster := proctest.New(t)
	start := func(s *e2eSite) {
		t.Helper()
		if s.proc == nil {
			runSites(ctx, t, c, cluster, peerFile, testPolicyFile(t), []*e2eSite{s},
				"--join-timeout", "10m", "--send-timeout", "10m", "--round-timeout", "1m")
			return
		}
		if err := s.proc.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		waitReady(ctx, t, s)
	}
	stop := func(s *e2eSite) {
		t.Helper()
		if err := s.proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := s.proc.Wait(ctx); err != nil {
			t.Fatalf("stop %s: %v", s.name, err)
		}
	}
	for _, s := range sites {
		start(s)
	}
	a, b, sc := sites[0], sites[1], sites[2]
	key := keygen2of3(t, c, a, b, sc)
	// Three presignatures for each site of every pair, in its own pool:
	// sign, sign-psbt and sign-eth from that site use one each (auto takes
	// GG20 when it can).
	for _, pair := range [][2]*e2eSite{{a, b}, {a, sc}, {b, sc}} {
		for _, s := range pair {
			var res presignResult
			c.ok(t, nil, &res, "presign", "--home", s.home, "--key", key.KeyID, "--count", "3",
				"--signers", pair[0].peerID+","+pair[1].peerID)
		}
	}
	packet, _ := regtestPSBT(t, key.BTCAddress)
	var buf bytes.Buffer
	if err := packet.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	psbtB64 := base64.StdEncoding.EncodeToString(buf.Bytes())

	for i, down := range sites {
		stop(down)
		for _, via := range sites {
			if via == down {
				continue
			}
			live := []string{via.peerID}
			for _, s := range sites {
				if s != down && s != via {
					live = append(live, s.peerID)
				}
			}
			slices.Sort(live)
			t.Run(fmt.Sprintf("%s-down/from-%s", down.name, via.name), func(t *testing.T) {
				var sig signResult
				c.ok(t, nil, &sig, "sign", "--home", via.home, "--key", key.KeyID,
					"--digest", hex.EncodeToString(bytes.Repeat([]byte{byte(i + 1), via.name[0]}, 16)))
				if !slices.Equal(sig.Signers, live) || sig.Protocol != "gg20" {
					t.Errorf("sign without --signers: %s with %v, want gg20 with the live pair %v", sig.Protocol, sig.Signers, live)
				}
				var ps signPSBTResult
				c.ok(t, nil, &ps, "sign-psbt", "--home", via.home, "--key", key.KeyID, "--psbt", psbtB64)
				if !ps.Complete {
					t.Errorf("sign-psbt without --signers: %+v", ps)
				}
				to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
				tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: uint64(i), To: &to, Value: big.NewInt(1),
					Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9)})
				raw, err := tx.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				var eth signEthResult
				c.ok(t, nil, &eth, "sign-eth", "--home", via.home, "--key", key.KeyID, "--tx", hex.EncodeToString(raw), "--chain-id", "1337")
				if eth.From != key.ETHAddress {
					t.Errorf("sign-eth without --signers: from %s, want %s", eth.From, key.ETHAddress)
				}
				// status shows who this site can sign with now.
				var st statusResult
				c.ok(t, nil, &st, "status", "--home", via.home)
				var up []string
				for _, p := range st.Keys[0].SignersUp {
					up = append(up, string(p))
				}
				if !slices.Equal(up, live) {
					t.Errorf("status signers_up %v, want the live pair %v", up, live)
				}
			})
		}
		start(down)
	}

	// Two sites down: the request fails at once, naming both.
	stop(b)
	stop(sc)
	eb := c.fails(t, nil, 1, codeUnreachable, "sign", "--home", a.home, "--key", key.KeyID, "--digest", strings.Repeat("42", 32))
	slices.Sort(eb.Parties)
	want := []string{b.peerID, sc.peerID}
	slices.Sort(want)
	if !slices.Equal(eb.Parties, want) || !strings.Contains(eb.Error, "only 1 of the committee") {
		t.Fatalf("two sites down: %s, parties %v; want both named", eb.Error, eb.Parties)
	}
}
