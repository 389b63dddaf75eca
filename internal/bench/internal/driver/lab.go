// Package driver is the benchmark suite's side of the party processes
// (cmd kqbenchparty, package bench/internal/party): it creates the sites
// (SoftHSM2 tokens, PIN files, store directories) once in a lab directory,
// starts deployments of party processes over memnet or libp2p, sends them
// requests, and snapshots and restores the sites' stores.
//
// A lab directory outlives one `go test` run, so that several runs (each
// with its own -benchtime) share keys and presignatures.
package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// Lab is a set of sites on disk.
type Lab struct {
	// Root is the lab directory.
	Root string
	// Binary is the kqbenchparty executable.
	Binary string
	// Sites are the sites, by index.
	Sites []party.Site
	// IDs are the sites' party IDs, by index.
	IDs []string

	hsm   *softhsm.Dir
	state labState
}

// labState is what lab.json keeps between runs.
type labState struct {
	HSMRoot string            `json:"hsm_root"`
	Sites   []party.Site      `json:"sites"`
	IDs     []string          `json:"ids"`
	Values  map[string]string `json:"values"`
}

const stateFile = "lab.json"

// OpenLab opens the lab in root, creating n sites the first time (or more
// when it has fewer than n). binary is the kqbenchparty executable.
func OpenLab(ctx context.Context, root, binary string, n int) (*Lab, error) {
	l := &Lab{Root: root, Binary: binary}
	data, err := os.ReadFile(filepath.Join(root, stateFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &l.state); err != nil {
			return nil, fmt.Errorf("driver: %s: %w", stateFile, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		l.state.HSMRoot = filepath.Join(root, "hsm")
	default:
		return nil, err
	}
	if l.state.Values == nil {
		l.state.Values = map[string]string{}
	}
	if len(l.state.Sites) < n {
		if err := l.create(ctx, n); err != nil {
			return nil, err
		}
	} else {
		mod, err := softhsm.ModulePath()
		if err != nil {
			return nil, err
		}
		root := l.state.HSMRoot
		l.hsm = &softhsm.Dir{Root: root, ConfPath: filepath.Join(root, "softhsm2.conf"), Module: mod}
	}
	l.Sites, l.IDs = l.state.Sites, l.state.IDs
	return l, nil
}

// create makes a fresh lab of n sites in Root, discarding an older lab
// there: SoftHSM2 only sees tokens that existed when a process loaded it,
// so all tokens are made before any party process starts. A directory
// that holds anything but a lab is refused, never emptied.
func (l *Lab) create(ctx context.Context, n int) error {
	entries, err := os.ReadDir(l.Root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_, statErr := os.Stat(filepath.Join(l.Root, stateFile))
	if len(entries) > 0 && statErr != nil {
		return fmt.Errorf("driver: %s is not empty and holds no %s; give the lab a directory of its own", l.Root, stateFile)
	}
	if err := os.RemoveAll(l.Root); err != nil {
		return err
	}
	hsmRoot := filepath.Join(l.Root, "hsm")
	if err := os.MkdirAll(hsmRoot, 0o700); err != nil {
		return err
	}
	dir, err := softhsm.CreateDir(hsmRoot)
	if err != nil {
		return fmt.Errorf("driver: token directory: %w", err)
	}
	l.hsm = dir
	l.state = labState{HSMRoot: hsmRoot, Values: map[string]string{}}
	for i := range n {
		tok, err := dir.CreateToken()
		if err != nil {
			return fmt.Errorf("driver: token for site %d: %w", i, err)
		}
		siteDir := filepath.Join(l.Root, "site"+strconv.Itoa(i))
		store := filepath.Join(siteDir, "store")
		if err := os.MkdirAll(store, 0o700); err != nil {
			return err
		}
		pin := filepath.Join(siteDir, "pin")
		if err := os.WriteFile(pin, []byte(tok.PIN+"\n"), 0o600); err != nil {
			return err
		}
		l.state.Sites = append(l.state.Sites, party.Site{Index: i, Module: dir.Module, TokenLabel: tok.Label, PINFile: pin, StoreDir: store})
	}
	cfgPath := filepath.Join(l.Root, "init.json")
	if err := writeJSON(cfgPath, party.Config{Sites: l.state.Sites, Network: party.Memnet}); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, l.Binary, "init", cfgPath)
	cmd.Env = append(os.Environ(), dir.Env())
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("driver: kqbenchparty init: %w: %s", err, ee.Stderr)
		}
		return fmt.Errorf("driver: kqbenchparty init: %w", err)
	}
	if err := json.Unmarshal(out, &l.state.IDs); err != nil || len(l.state.IDs) != n {
		return fmt.Errorf("driver: kqbenchparty init printed %q: %v", out, err)
	}
	return l.save()
}

func (l *Lab) save() error {
	return writeJSON(filepath.Join(l.Root, stateFile), l.state)
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Value returns a value the suite kept in the lab ("" if none).
func (l *Lab) Value(name string) string { return l.state.Values[name] }

// SetValue keeps a value in the lab across runs.
func (l *Lab) SetValue(name, value string) error {
	if value == "" {
		delete(l.state.Values, name)
	} else {
		l.state.Values[name] = value
	}
	return l.save()
}

// Env returns the environment entry that shows a process the lab's tokens.
func (l *Lab) Env() string { return l.hsm.Env() }

// Snapshot copies every site's store, and the SoftHSM2 token directory
// that holds every site's token, into the snapshot called name, replacing
// it. No deployment may be running.
//
// Restoring a snapshot rolls each site's HSM ledgers back together with its
// store, so presignatures used since the snapshot become usable again. That
// is what the online benchmarks want, on purpose: they sign the same digests
// with the same presignatures in every run, which reproduces the same
// signatures and reveals nothing new. It is also exactly the rollback that a
// site holding value must never undergo (README, "Backups"); the lab's keys
// hold nothing. Every site and every token are restored together, so no
// site ends up with a store that disagrees with its ledgers.
func (l *Lab) Snapshot(name string) error {
	base := filepath.Join(l.Root, "snapshots", name)
	if err := os.RemoveAll(base); err != nil {
		return err
	}
	for i, s := range l.Sites {
		if err := copyTree(s.StoreDir, filepath.Join(base, "site"+strconv.Itoa(i))); err != nil {
			return fmt.Errorf("driver: snapshot %s of site %d: %w", name, i, err)
		}
	}
	if l.hsm != nil {
		if err := copyTree(l.tokenDir(), filepath.Join(base, "tokens")); err != nil {
			return fmt.Errorf("driver: snapshot %s of the tokens: %w", name, err)
		}
	}
	return nil
}

// tokenDir is the SoftHSM2 token directory of the lab.
func (l *Lab) tokenDir() string { return filepath.Join(l.hsm.Root, "tokens") }

// HasSnapshot reports whether the snapshot called name exists.
func (l *Lab) HasSnapshot(name string) bool {
	_, err := os.Stat(filepath.Join(l.Root, "snapshots", name))
	return err == nil
}

// Restore puts every site's store and the token directory of the snapshot
// back (see Snapshot). No deployment may be running.
func (l *Lab) Restore(name string) error {
	base := filepath.Join(l.Root, "snapshots", name)
	entries, err := os.ReadDir(base)
	if err != nil {
		return fmt.Errorf("driver: restore %s: %w", name, err)
	}
	for _, e := range entries {
		var dst string
		if e.Name() == "tokens" {
			if l.hsm == nil {
				return fmt.Errorf("driver: restore %s: the lab has no token directory", name)
			}
			dst = l.tokenDir()
		} else {
			i, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "site"))
			if err != nil || !strings.HasPrefix(e.Name(), "site") || i < 0 || i >= len(l.Sites) {
				return fmt.Errorf("driver: restore %s: unexpected entry %s", name, e.Name())
			}
			dst = l.Sites[i].StoreDir
		}
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if err := copyTree(filepath.Join(base, e.Name()), dst); err != nil {
			return fmt.Errorf("driver: restore %s (%s): %w", name, e.Name(), err)
		}
	}
	return nil
}

// copyTree copies the directory src to dst (which must not exist),
// keeping permissions.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}
