package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// storeDir is where kqnode keeps a site's sealed store inside its home.
func (s *site) storeDir() string { return filepath.Join(s.home, "store") }

// backupStore copies the site's store, as an operator's file backup would.
// The site must be stopped.
func (s *site) backupStore(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), s.name+"-store")
	if out, err := exec.Command("cp", "-a", s.storeDir(), dst).CombinedOutput(); err != nil {
		t.Fatalf("back up %s's store: %v: %s", s.name, err, out)
	}
	return dst
}

// restoreStore puts a backup of the site's store back in place. The site
// must be stopped. Its SoftHSM token directory is left as it is, as a
// hardware HSM would be.
func (s *site) restoreStore(t *testing.T, backup string) {
	t.Helper()
	if err := os.RemoveAll(s.storeDir()); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", backup, s.storeDir()).CombinedOutput(); err != nil {
		t.Fatalf("restore %s's store: %v: %s", s.name, err, out)
	}
}

// storeRestore is the restore attack of a careless (or hostile) operator:
// presign, copy the stores, sign with the presignature, put the copies
// back, and try to sign again. A second signature with the presignature's R
// would give away the key (the ledger fails the test on any repeated r).
// The HSM ledger keeps the presignature used: after restoring one site and
// then both, no site offers it again and every attempt fails with
// no_presignature.
func storeRestore(t *testing.T, c *committee) {
	k := c.key
	x, y := c.sites[0], c.sites[1]
	xy := []*site{x, y}
	k.samePools(t, 0, xy...)
	k.presign(t, 1, x, y)
	x.kill(t)
	y.kill(t)
	bx, by := x.backupStore(t), y.backupStore(t)
	c.startAll(t, x, y)
	k.sign(t, c.ledger, "gg20", x, y)
	k.samePools(t, 0, xy...)

	tryBoth := func(what string) {
		t.Helper()
		for _, via := range [][]*site{{x, y}, {y, x}} {
			d := sha256.Sum256(fmt.Appendf(nil, "after restoring %s, via %s", what, via[0].name))
			r := via[0].run(t, k.signArgs(d, "gg20", via)...)
			if r.code == 0 {
				var sig signature
				r.decode(t, &sig)
				k.check(t, c.ledger, d, "gg20", xy, sig) // fails on a repeated r
				t.Fatalf("after restoring %s, %s signed with a presignature that was used before the restore", what, via[0].name)
			}
			var eb errorBody
			r.decode(t, &eb)
			if eb.Code != "no_presignature" && eb.Code != "refused" {
				t.Fatalf("after restoring %s, via %s: %+v, want no_presignature or a refusal", what, via[0].name, eb)
			}
			t.Logf("after restoring %s, via %s: %s: %s", what, via[0].name, eb.Code, eb.Error)
		}
	}

	y.kill(t)
	y.restoreStore(t, by)
	c.startAll(t, y)
	k.samePools(t, 0, xy...)
	tryBoth("y's store")

	x.kill(t)
	y.kill(t)
	x.restoreStore(t, bx)
	y.restoreStore(t, by)
	c.startAll(t, x, y)
	k.samePools(t, 0, xy...)
	tryBoth("both stores")
}
