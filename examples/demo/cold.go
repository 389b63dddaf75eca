package main

// The cold-site demo (make demo-cold): sites a and b are online, talking
// over libp2p; site c runs `kqnode run --offline`, with no network at all.
// Every message to or from c travels in a bundle file that the demo
// carries between the processes with `kqnode offline export` and
// `kqnode offline import`, as an operator would on removable media.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// coldCommittee is the committee ID the demo's sites name in their bundles.
const coldCommittee = "demo-cold"

// courier carries the bundles between the cold site and the online ones.
type courier struct {
	d     *demo
	dir   string
	links [][2]*site
	n     int
	// carried counts the files and bytes carried since the last reset.
	files, bytes int
	// show, when set, is called with the output of `kqnode offline show`
	// on the recipient for every bundle before it is imported.
	show func(to *site, out string)
}

// round exports the next bundle of every link and imports it; it reports
// whether anything moved.
func (k *courier) round(ctx context.Context) (bool, error) {
	moved := false
	for _, l := range k.links {
		from, to := l[0], l[1]
		k.n++
		file := filepath.Join(k.dir, fmt.Sprintf("%04d-%s-to-%s.kqb", k.n, from.name, to.name))
		var ex struct {
			Exported bool `json:"exported"`
			Info     *struct {
				Size int `json:"size"`
			} `json:"info"`
		}
		if err := k.d.kq(ctx, &ex, "offline", "export", "--home", from.home, "--to", to.peerID, file); err != nil {
			return moved, err
		}
		if !ex.Exported {
			continue
		}
		if k.show != nil {
			out, err := k.d.kqText(ctx, "offline", "show", "--home", to.home, file)
			if err != nil {
				return moved, err
			}
			k.show(to, out)
		}
		var im json.RawMessage
		if err := k.d.kq(ctx, &im, "offline", "import", "--home", to.home, file); err != nil {
			return moved, err
		}
		k.files++
		k.bytes += ex.Info.Size
		moved = true
	}
	return moved, nil
}

// during runs f while carrying bundles, until f returns.
func (k *courier) during(ctx context.Context, f func() (string, error)) (string, error) {
	type res struct {
		note string
		err  error
	}
	done := make(chan res, 1)
	go func() {
		note, err := f()
		done <- res{note, err}
	}()
	for {
		select {
		case r := <-done:
			return r.note, r.err
		default:
		}
		moved, err := k.round(ctx)
		if err != nil {
			r := <-done // f fails too, once its round times out or ctx ends
			return r.note, fmt.Errorf("carrying bundles: %w (and: %v)", err, r.err)
		}
		if !moved {
			select {
			case r := <-done:
				return r.note, r.err
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// carried returns and resets the count of carried files.
func (k *courier) carried() string {
	s := fmt.Sprintf("%d bundle files carried, %d bytes", k.files, k.bytes)
	k.files, k.bytes = 0, 0
	return s
}

// kqText runs a kqnode command without --json and returns its stdout.
func (d *demo) kqText(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.kqnode, args...)
	cmd.Env = append(os.Environ(), d.hsm.Env(), "KQ_OPERATOR_KEY="+d.operator)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return "", fmt.Errorf("kqnode %s: %w: %s", strings.Join(args[:2], " "), err, msg)
	}
	return string(out), nil
}

// runCold is the cold-site demo.
func (d *demo) runCold(ctx context.Context) error {
	fmt.Fprintln(d.out, "keyquorum cold-site demo: sites a and b online (libp2p), site c with no network at all;")
	fmt.Fprintln(d.out, "every message to or from c travels in a bundle file (signed by the sender's HSM, encrypted to the recipient's)")
	fmt.Fprintln(d.out, "NOTE: the sites import the Paillier pre-parameter TEST FIXTURES in "+d.o.fixtures+": the demo's keys are not")
	fmt.Fprintln(d.out, "      secret; never send value to them.")
	fmt.Fprintln(d.out, "      Working directory: "+d.dir)
	fmt.Fprintln(d.out)

	if err := d.do("create three SoftHSM2 tokens", d.createTokens); err != nil {
		return err
	}
	if err := d.do("kqnode init: seal key and identity key in each token", d.initSites); err != nil {
		return err
	}
	if err := d.do("two approvers make SSH keys; every site loads a policy naming them", d.writePolicy); err != nil {
		return err
	}
	a, b, c := d.sites[0], d.sites[1], d.sites[2]
	ids := map[*site]string{}
	if err := d.do("kqnode offline identity: each site's HPKE key in its token, its identity file for the others", func() (string, error) {
		var lines []string
		for _, s := range d.sites {
			file := filepath.Join(d.dir, "identity-"+s.name+".json")
			var id struct {
				PeerID string `json:"peer_id"`
				HPKE   string `json:"hpke_public_key"`
			}
			if err := d.kq(ctx, &id, "offline", "identity", "--home", s.home, "--out", file); err != nil {
				return "", err
			}
			ids[s] = file
			lines = append(lines, fmt.Sprintf("site %s: HPKE key %s…", s.name, id.HPKE[:24]))
		}
		return strings.Join(lines, "\n"), nil
	}); err != nil {
		return err
	}
	timeouts := []string{"--join-timeout", "2m", "--round-timeout", "2m", "--send-timeout", "10s", "--committee", coldCommittee}
	if err := d.do("kqnode run: a and b on 127.0.0.1 with c as their bundle peer; c with --offline (no libp2p host, no listening socket)", func() (string, error) {
		type peer struct {
			PeerID string   `json:"peer_id"`
			Addrs  []string `json:"addrs"`
		}
		var peers []peer
		for _, s := range []*site{a, b} {
			p, err := freePort()
			if err != nil {
				return "", err
			}
			s.port = p
			peers = append(peers, peer{PeerID: s.peerID, Addrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p)}})
		}
		peerFile := filepath.Join(d.dir, "peers-ab.json")
		pb, _ := json.MarshalIndent(peers, "", "  ")
		if err := os.WriteFile(peerFile, pb, 0o644); err != nil {
			return "", err
		}
		for _, s := range []*site{a, b} {
			args := append([]string{"--peers", peerFile, "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", s.port),
				"--api", "127.0.0.1:0", "--bundle-peers", ids[c]}, timeouts...)
			if err := d.start(ctx, s, "", args...); err != nil {
				return "", err
			}
		}
		args := append([]string{"--offline", "--bundle-peers", ids[a] + "," + ids[b]}, timeouts...)
		if err := d.start(ctx, c, "", args...); err != nil {
			return "", err
		}
		return fmt.Sprintf("logs in %s", d.dir), nil
	}); err != nil {
		return err
	}

	k := &courier{d: d, dir: filepath.Join(d.dir, "carried"), links: [][2]*site{{a, c}, {b, c}, {c, a}, {c, b}}}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return err
	}
	var key keygenOut
	if err := d.do("2-of-3 keygen, c taking part through files", func() (string, error) {
		_, err := k.during(ctx, func() (string, error) {
			return "", d.client(ctx, a, &key, "keygen", "--threshold", "2", "--parties", a.peerID+","+b.peerID+","+c.peerID)
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("key %s\npublic key %s\n%s", key.KeyID, key.PublicKey, k.carried()), nil
	}); err != nil {
		return err
	}
	k.links = [][2]*site{{a, c}, {c, a}}
	if err := d.do("GG20: a batch of 3 presignatures for sites a+c, in one sitting", func() (string, error) {
		var res presignOut
		_, err := k.during(ctx, func() (string, error) {
			return "", d.client(ctx, a, &res, "presign", "--key", key.KeyID, "--count", "3", "--signers", a.peerID+","+c.peerID)
		})
		if err != nil {
			return "", err
		}
		if res.Ready < 3 {
			return "", fmt.Errorf("%d presignatures ready after making %d, want 3", res.Ready, res.Made)
		}
		return fmt.Sprintf("%d made, %d ready on site a\n%s", res.Made, res.Ready, k.carried()), nil
	}); err != nil {
		return err
	}
	for i := 1; i <= 3; i++ {
		var seen string
		k.show = func(to *site, out string) {
			if to == c && seen == "" && strings.Contains(out, "request:") {
				seen = out
			}
		}
		if err := d.do(fmt.Sprintf("GG20 signature %d of 3 by a+c: one file to c, one back; verify", i), func() (string, error) {
			note, err := k.during(ctx, func() (string, error) {
				return d.signDigest(ctx, a, &key, fmt.Sprintf("keyquorum cold demo: withdrawal %d", i), []*site{a, c}, "gg20")
			})
			if err != nil {
				return "", err
			}
			if i == 1 {
				note = "what c's operator saw before importing the request (kqnode offline show --home):\n  " +
					strings.ReplaceAll(strings.TrimRight(seen, "\n"), "\n", "\n  ") + "\n" + note
			}
			return note + "\n" + k.carried(), nil
		}); err != nil {
			return err
		}
		k.show = nil
	}
	// The set-up users describe most: two HSMs, one of them offline, and
	// every transaction needs both.
	k.links = [][2]*site{{a, c}, {c, a}}
	var key2 keygenOut
	if err := d.do("2-of-2 key of a and c (every signature needs the cold HSM): keygen through files", func() (string, error) {
		_, err := k.during(ctx, func() (string, error) {
			return "", d.client(ctx, a, &key2, "keygen", "--threshold", "2", "--parties", a.peerID+","+c.peerID)
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("key %s\npublic key %s\n%s", key2.KeyID, key2.PublicKey, k.carried()), nil
	}); err != nil {
		return err
	}
	if err := d.do("2-of-2: one presignature, then a GG20 signature by a+c; verify", func() (string, error) {
		var res presignOut
		if _, err := k.during(ctx, func() (string, error) {
			return "", d.client(ctx, a, &res, "presign", "--key", key2.KeyID, "--count", "1", "--signers", a.peerID+","+c.peerID)
		}); err != nil {
			return "", err
		}
		presigned := k.carried()
		note, err := k.during(ctx, func() (string, error) {
			return d.signDigest(ctx, a, &key2, "keyquorum cold demo: 2-of-2", []*site{a, c}, "gg20")
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("presign: %s\n%s\nsignature: %s", presigned, note, k.carried()), nil
	}); err != nil {
		return err
	}
	if err := d.do("stop the sites", func() (string, error) {
		for _, s := range d.sites {
			if err := d.stop(s); err != nil {
				return "", err
			}
		}
		return "", nil
	}); err != nil {
		return err
	}
	return nil
}
