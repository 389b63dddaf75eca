package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/internal/nsstoken"
	"github.com/keyquorum/keyquorum/internal/proctest"
)

// newNSSSite is newSite for a site whose token is an NSS softoken
// database, set up as the README says: `kqnode init --module-init-args`
// names the database, config.json keeps the arguments, and every later
// start reads them from there (no environment, no system-wide file).
func newNSSSite(t *testing.T, bin, root, name, listen string, fixtureSets ...int) *site {
	t.Helper()
	dbRoot := filepath.Join(root, name, "nss")
	if err := os.MkdirAll(dbRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	set, err := nsstoken.NewSet(dbRoot)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := set.CreateToken()
	if err != nil {
		t.Fatal(err)
	}
	s := &site{name: name, bin: bin, pinFile: tok.PINFile(t), home: filepath.Join(root, name, "home"), listen: listen}
	var files []string
	for _, i := range fixtureSets {
		files = append(files, filepath.Join(fixtures.Dir(), "preparams", fmt.Sprintf("preparams-%02d.json", i)))
	}
	var res struct {
		PeerID         string `json:"peer_id"`
		PreParamsReady int    `json:"preparams_ready"`
		SealKey        struct {
			Scheme string `json:"scheme"`
			Local  bool   `json:"local"`
		} `json:"seal_key"`
	}
	pub := writeOperatorKey(t, s)
	s.ok(t, &res, "init", "--module", tok.Module(), "--module-init-args", set.InitArgs(), "--token", tok.Label,
		"--pin-source", "file:"+s.pinFile, "--preparams-fixtures", strings.Join(files, ","), "--admin-key", pub, "--admin-roles", "admin,requester,approver,auditor")
	if res.PeerID == "" || res.PreParamsReady != len(fixtureSets) || res.SealKey.Scheme != "aes-256-gcm" || res.SealKey.Local {
		t.Fatalf("init %s on NSS softoken: %+v", name, res)
	}
	s.peerID = res.PeerID
	return s
}

// TestMixedTokens runs a committee whose sites use two PKCS#11
// implementations: sites a and b on SoftHSM2 tokens, site n on an NSS
// softoken database, each a kqnode process. The NSS site proposes the
// 2-of-3 keygen; GG18 signs with it and each SoftHSM2 site; it presigns
// (its presignature ledger lives in the NSS database) and signs with GG20;
// then it is killed and restarted, reloads its sealed share and
// presignatures from the store its token sealed, and signs again with
// both protocols.
func TestMixedTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: three kqnode processes and a keygen")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := kqnodeBinary(t)
	c := &committee{ctx: ctx, root: t.TempDir(), cluster: proctest.New(t), ledger: newLedger()}
	listen := func() string { return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freeTCP(t)) }
	a := newSite(t, bin, c.root, "a", listen(), "", 0)
	b := newSite(t, bin, c.root, "b", listen(), "", 1)
	n := newNSSSite(t, bin, c.root, "n", listen(), 2)
	c.sites = []*site{a, b, n}
	c.peers = writePeers(t, filepath.Join(c.root, "peers.json"), c.sites...)
	c.startAll(t, c.sites...)

	k := keygen(t, n, c.sites...)
	c.key = k
	k.sign(t, c.ledger, "gg18", a, n)
	k.sign(t, c.ledger, "gg18", n, b)
	k.presign(t, 2, n, a)
	k.sign(t, c.ledger, "gg20", n, a)
	k.samePools(t, 1, n, a)

	n.kill(t)
	n.start(ctx, t, c.cluster, c.peers)
	st := n.status(t)
	if len(st.Keys) != 1 || st.Keys[0].KeyID != k.KeyID || st.Keys[0].PublicKey != k.PublicKey {
		t.Fatalf("n's keys after the restart: %+v", st.Keys)
	}
	k.samePools(t, 1, n, a)
	k.sign(t, c.ledger, "gg20", n, a) // the presignature made before the restart
	k.samePools(t, 0, n, a)
	k.sign(t, c.ledger, "gg18", n, b)
	t.Logf("%d GG18 and %d GG20 signatures verified across SoftHSM2 and NSS softoken sites", c.ledger.gg18, c.ledger.gg20)
}
