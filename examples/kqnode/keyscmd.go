package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// The read-only commands keys list, keys show and pools list. They read
// the site's status (GET /v1/status) and compute everything else from
// public data: addresses and xpubs come from the group key and chain code
// with BIP-32 public derivation, which needs no secret and no other site.

// memberJSON is one committee member.
type memberJSON struct {
	PeerID string `json:"peer_id"`
	// Name is the site's name in the peer file, when it has one.
	Name string `json:"name,omitempty"`
}

// keyJSON is one key as keys list and keys show print it.
type keyJSON struct {
	KeyID string `json:"key_id"`
	// Label is this site's name for the key, if it has one.
	Label string `json:"label,omitempty"`
	// Threshold is M: how many sites must sign; Parties is N.
	Threshold int `json:"threshold"`
	Parties   int `json:"parties"`
	// Committee are the key's sites, sorted by peer ID.
	Committee []memberJSON `json:"committee"`
	Epoch     uint64       `json:"epoch"`
	// Created is when this site's share was made (absent for shares of
	// older versions).
	Created   time.Time `json:"created,omitzero"`
	PublicKey string    `json:"public_key"`
	ChainCode string    `json:"chain_code"`
	// Network is the Bitcoin network of BTCAddress.
	Network string `json:"network"`
	// BTCAddress (P2WPKH) and ETHAddress are those of m, the key itself.
	BTCAddress string `json:"btc_address"`
	ETHAddress string `json:"eth_address"`
}

type keysListResult struct {
	Keys []keyJSON `json:"keys"`
}

// derivedJSON is a key at a derivation path.
type derivedJSON struct {
	Path       string `json:"path"`
	PublicKey  string `json:"public_key"`
	BTCAddress string `json:"btc_address"`
	ETHAddress string `json:"eth_address"`
	// XPub is the BIP-32 serialisation of the path's public key with its
	// chain code (xpub on mainnet, tpub on the test networks).
	XPub string `json:"xpub"`
}

type keyShowResult struct {
	keyJSON
	Derived derivedJSON `json:"derived"`
}

// poolJSON is one presignature pool as pools list prints it.
type poolJSON struct {
	KeyID   string   `json:"key_id"`
	Signers []string `json:"signers"`
	Path    string   `json:"path"`
	// Initiator made the pool and is the only site that spends it; Own
	// reports that it is this site.
	Initiator string `json:"initiator"`
	Own       bool   `json:"own"`
	// Target is how many ready presignatures the site keeps in its own
	// pool (0: none, nothing refills it); 0 for another site's pool.
	Target    int    `json:"target"`
	Ready     int    `json:"ready"`
	Reserved  int    `json:"reserved"`
	Making    int    `json:"making"`
	Made      uint64 `json:"made"`
	Used      uint64 `json:"used"`
	Burned    uint64 `json:"burned"`
	Discarded uint64 `json:"discarded"`
	// Foreign counts refused attempts by other signers to spend the
	// pool's presignatures, the last by ForeignBy.
	Foreign   uint64 `json:"foreign"`
	ForeignBy string `json:"foreign_by,omitempty"`
	// Error says why the pool could not be read, if it could not.
	Error string `json:"error,omitempty"`
}

type poolsListResult struct {
	PeerID string     `json:"peer_id"`
	Pools  []poolJSON `json:"pools"`
	// Names are the sites' names from the peer file, by peer ID.
	Names map[string]string `json:"names,omitempty"`
}

// cmdKeys runs keys list and keys show.
func cmdKeys(ctx context.Context, e *env, args []string) error {
	const usage = "kqnode keys list --home DIR [--network regtest] [--json] | kqnode keys show --home DIR --key ID [--path m/0/1] [--network regtest] [--json] | kqnode keys label --home DIR --key ID --label NAME [--json]"
	e.json = wantsJSON(args)
	if len(args) == 0 {
		return usageErrorf("keys: a subcommand is required\nusage: %s", usage)
	}
	switch args[0] {
	case "list":
		return cmdKeysList(ctx, e, args[1:])
	case "show":
		return cmdKeysShow(ctx, e, args[1:])
	case "label":
		return cmdKeysLabel(ctx, e, args[1:])
	}
	return usageErrorf("keys: unknown subcommand %q\nusage: %s", args[0], usage)
}

func cmdKeysList(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("keys list", "kqnode keys list --home DIR [--network regtest] [--json]")
	network := f.String("network", "regtest", "Bitcoin network of btc_address: mainnet, testnet, regtest or signet")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	net, err := bitcoinNetwork(*network)
	if err != nil {
		return err
	}
	st, err := siteStatus(ctx, c)
	if err != nil {
		return err
	}
	res := keysListResult{Keys: []keyJSON{}}
	for _, k := range st.Keys {
		kj, _, err := describeKey(k, st.Names, net)
		if err != nil {
			return err
		}
		res.Keys = append(res.Keys, kj)
	}
	if e.json {
		return printJSON(e.stdout, res)
	}
	printKeys(e.stdout, res.Keys)
	return nil
}

func cmdKeysShow(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("keys show", "kqnode keys show --home DIR --key ID [--path m/0/1] [--network regtest] [--json]")
	key := f.String("key", "", "key ID (required)")
	path := f.String("path", "m", "BIP-32 non-hardened derivation path to show the public key, addresses and xpub of")
	network := f.String("network", "regtest", "Bitcoin network of the addresses and the xpub's version: mainnet, testnet, regtest or signet")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key == "" {
		return usageErrorf("keys show: --key is required\nusage: %s", f.synopsis)
	}
	if err := checkKeyID(*key); err != nil {
		return err
	}
	pathText := *path
	if pathText == "" {
		pathText = "m"
	}
	p, err := hd.ParsePath(pathText)
	if err != nil {
		return fmt.Errorf("%w: --path %q: %w", errBadRequest, truncate(*path, 80), err)
	}
	net, err := bitcoinNetwork(*network)
	if err != nil {
		return err
	}
	st, err := siteStatus(ctx, c)
	if err != nil {
		return err
	}
	var found *keyquorum.KeyStatus
	for i := range st.Keys {
		if st.Keys[i].KeyID == *key {
			found = &st.Keys[i]
		}
	}
	if found == nil {
		return unknownKey(*key, st)
	}
	kj, xpub, err := describeKey(*found, st.Names, net)
	if err != nil {
		return err
	}
	d, err := derive(xpub, p, net)
	if err != nil {
		return fmt.Errorf("key %s at %s: %w", *key, p, err)
	}
	res := keyShowResult{keyJSON: kj, Derived: d}
	if e.json {
		return printJSON(e.stdout, res)
	}
	printKey(e.stdout, &res)
	return nil
}

func cmdPools(ctx context.Context, e *env, args []string) error {
	const usage = "kqnode pools list --home DIR [--key ID] [--json] | kqnode pools target --home DIR --key ID --target N [--signers ID,ID] [--path m/0/1] [--json] | kqnode pools drain --home DIR --key ID [--signers ID,ID] [--path m/0/1] [--initiator ID] [--json]"
	e.json = wantsJSON(args)
	if len(args) == 0 {
		return usageErrorf("pools: a subcommand is required\nusage: %s", usage)
	}
	switch args[0] {
	case "list":
		return cmdPoolsList(ctx, e, args[1:])
	case "target":
		return cmdPoolsTarget(ctx, e, args[1:])
	case "drain":
		return cmdPoolsDrain(ctx, e, args[1:])
	}
	return usageErrorf("pools: unknown subcommand %q\nusage: %s", args[0], usage)
}

// cmdPoolsTarget sets how many ready presignatures the site keeps in one
// of its own pools.
func cmdPoolsTarget(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("pools target", "kqnode pools target --home DIR --key ID --target N [--signers ID,ID] [--path m/0/1] [--json]")
	key := f.String("key", "", "key ID (required)")
	target := f.Int("target", -1, fmt.Sprintf("ready presignatures to keep, 0 to %d; 0 stops the refill (required)", keyquorum.MaxPoolTarget))
	signers := f.String("signers", "", "the pool's signers, comma-separated, this site included (default: this site and the next M-1 of the committee)")
	path := f.String("path", "", "the BIP-32 path the pool's presignatures sign under (default: the key itself)")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key == "" || *target < 0 {
		return usageErrorf("pools target: --key and --target are required\nusage: %s", f.synopsis)
	}
	if err := checkKeyID(*key); err != nil {
		return err
	}
	ids, err := peerList("pools target", "signers", *signers)
	if err != nil {
		return err
	}
	return c.request(ctx, e, "pools target", pathPoolTarget, poolTargetRequest{KeyID: *key, Signers: ids, Path: *path, Target: *target}, &poolResult{})
}

// cmdPoolsDrain discards the ready presignatures of a pool.
func cmdPoolsDrain(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("pools drain", "kqnode pools drain --home DIR --key ID [--signers ID,ID] [--path m/0/1] [--initiator ID] [--json]")
	key := f.String("key", "", "key ID (required)")
	signers := f.String("signers", "", "the pool's signers, comma-separated, this site included (default: this site and the next M-1 of the committee)")
	path := f.String("path", "", "the BIP-32 path of the pool (default: the key itself)")
	initiator := f.String("initiator", "", "the site whose pool it is, to discard this site's parts of another site's pool (default: this site's own pool, whose refill stops)")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key == "" {
		return usageErrorf("pools drain: --key is required\nusage: %s", f.synopsis)
	}
	if err := checkKeyID(*key); err != nil {
		return err
	}
	ids, err := peerList("pools drain", "signers", *signers)
	if err != nil {
		return err
	}
	return c.request(ctx, e, "pools drain", pathPoolDrain, poolDrainRequest{KeyID: *key, Signers: ids, Path: *path, Initiator: *initiator}, &poolResult{})
}

// cmdPoolsList lists the site's pools.
func cmdPoolsList(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("pools list", "kqnode pools list --home DIR [--key ID] [--json]")
	key := f.String("key", "", "list only this key's pools")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key != "" {
		if err := checkKeyID(*key); err != nil {
			return err
		}
	}
	st, err := siteStatus(ctx, c)
	if err != nil {
		return err
	}
	res := poolsListResult{PeerID: string(st.PeerID), Pools: []poolJSON{}, Names: st.Names}
	seen := false
	for _, k := range st.Keys {
		if *key != "" && k.KeyID != *key {
			continue
		}
		seen = true
		for _, p := range k.Pools {
			res.Pools = append(res.Pools, poolJSON{KeyID: k.KeyID, Signers: partyStrings(p.Signers), Path: p.Path,
				Initiator: string(p.Initiator), Own: p.Initiator == st.PeerID, Target: p.Target,
				Ready: p.Ready, Reserved: p.Reserved, Making: p.Making,
				Made: p.Made, Used: p.Used, Burned: p.Burned, Discarded: p.Discarded,
				Foreign: p.Foreign, ForeignBy: string(p.ForeignBy), Error: p.Error})
		}
	}
	if *key != "" && !seen {
		return unknownKey(*key, st)
	}
	if e.json {
		return printJSON(e.stdout, res)
	}
	printPools(e.stdout, &res)
	return nil
}

// siteStatus reads the site's status.
func siteStatus(ctx context.Context, c *client) (*statusResult, error) {
	var st statusResult
	if err := c.call(ctx, pathStatus, nil, &st); err != nil {
		return nil, err
	}
	if st.Status == nil {
		return nil, fmt.Errorf("control API %s: the status answer holds no status", c.endpoint)
	}
	return &st, nil
}

// unknownKey is the error for a key the site holds no share of.
func unknownKey(keyID string, st *statusResult) error {
	held := make([]string, len(st.Keys))
	for i, k := range st.Keys {
		held[i] = k.KeyID
	}
	list := "none"
	if len(held) > 0 {
		list = strings.Join(held, ", ")
	}
	return fmt.Errorf("%w: site %s holds no share of key %s (it holds: %s); `kqnode keys list` lists them",
		tss.ErrUnknownKey, st.PeerID, keyID, list)
}

// describeKey makes the printed form of k and returns its BIP-32 view.
func describeKey(k keyquorum.KeyStatus, names map[string]string, network string) (keyJSON, wallet.ExtendedPublicKey, error) {
	info := &tss.KeyInfo{ID: k.KeyID, Threshold: k.Threshold, Parties: k.Parties}
	var err error
	if info.PublicKey, err = hex.DecodeString(k.PublicKey); err == nil {
		info.ChainCode, err = hex.DecodeString(k.ChainCode)
	}
	if err != nil {
		return keyJSON{}, wallet.ExtendedPublicKey{}, fmt.Errorf("key %s: the site reported a public key or chain code that is not hex: %w", k.KeyID, err)
	}
	xpub, err := keyquorum.ExtendedPublicKey(info)
	if err != nil {
		return keyJSON{}, wallet.ExtendedPublicKey{}, err
	}
	kj := keyJSON{KeyID: k.KeyID, Label: k.Label, Threshold: k.Threshold, Parties: len(k.Parties), Committee: []memberJSON{},
		Epoch: k.Epoch, Created: k.Created, PublicKey: k.PublicKey, ChainCode: k.ChainCode, Network: network}
	for _, p := range k.Parties {
		kj.Committee = append(kj.Committee, memberJSON{PeerID: string(p), Name: names[string(p)]})
	}
	params, err := wallet.Network(network)
	if err != nil {
		return keyJSON{}, wallet.ExtendedPublicKey{}, err
	}
	addr, err := wallet.BitcoinAddress(xpub.Key, wallet.P2WPKH, params)
	if err != nil {
		return keyJSON{}, wallet.ExtendedPublicKey{}, fmt.Errorf("key %s: %w", k.KeyID, err)
	}
	kj.BTCAddress = addr.EncodeAddress()
	kj.ETHAddress = wallet.EthereumAddress(xpub.Key).Hex()
	return kj, xpub, nil
}

// derive returns the key x at path p: its public key, addresses and xpub.
func derive(x wallet.ExtendedPublicKey, p hd.Path, network string) (derivedJSON, error) {
	params, err := wallet.Network(network)
	if err != nil {
		return derivedJSON{}, err
	}
	xs, err := serializeXPub(x, p, params.HDPublicKeyID)
	if err != nil {
		return derivedJSON{}, err
	}
	child, _, _, err := hd.Derive(x.Key, x.ChainCode, p)
	if err != nil {
		return derivedJSON{}, err
	}
	addr, err := wallet.BitcoinAddress(child, wallet.P2WPKH, params)
	if err != nil {
		return derivedJSON{}, err
	}
	return derivedJSON{Path: p.String(), PublicKey: hex.EncodeToString(child.SerializeCompressed()),
		BTCAddress: addr.EncodeAddress(), ETHAddress: wallet.EthereumAddress(child).Hex(), XPub: xs}, nil
}

// serializeXPub returns the BIP-32 serialisation of x's public key at path
// p: version || depth || parent fingerprint || child number || chain code
// || compressed key, in Base58Check (BIP-32 "Serialization format"). The
// parent fingerprint is the first four bytes of HASH160 of the parent's
// compressed key, zero at m.
func serializeXPub(x wallet.ExtendedPublicKey, p hd.Path, version [4]byte) (string, error) {
	if len(p) > hd.MaxDepth {
		return "", fmt.Errorf("%w: %d levels, at most %d", hd.ErrMalformedPath, len(p), hd.MaxDepth)
	}
	var (
		parentFP = []byte{0, 0, 0, 0}
		childNum uint32
		key      = x.Key
		cc       = x.ChainCode
	)
	if len(p) > 0 {
		parent, parentCC, _, err := hd.Derive(x.Key, x.ChainCode, p[:len(p)-1])
		if err != nil {
			return "", err
		}
		parentFP = btcutil.Hash160(parent.SerializeCompressed())[:4]
		childNum = p[len(p)-1]
		var child *secp256k1.PublicKey
		if child, cc, _, err = hd.Derive(parent, parentCC, p[len(p)-1:]); err != nil {
			return "", err
		}
		key = child
	}
	ek := hdkeychain.NewExtendedKey(version[:], key.SerializeCompressed(), cc, parentFP, uint8(len(p)), childNum, false)
	return ek.String(), nil
}

// committee names the members: by their peer-file name when they have one.
func committee(ms []memberJSON) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.PeerID
		if m.Name != "" {
			out[i] = m.Name
		}
	}
	return strings.Join(out, ",")
}

func created(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04Z")
}

// printKeys prints one aligned line per key.
func printKeys(w io.Writer, keys []keyJSON) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tLABEL\tM-OF-N\tEPOCH\tCREATED\tPUBLIC KEY\tBTC ADDRESS\tETH ADDRESS\tCOMMITTEE")
	for _, k := range keys {
		label := k.Label
		if label == "" {
			label = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d-of-%d\t%d\t%s\t%s\t%s\t%s\t%s\n", k.KeyID, label, k.Threshold, k.Parties, k.Epoch, created(k.Created),
			k.PublicKey, k.BTCAddress, k.ETHAddress, committee(k.Committee))
	}
	tw.Flush()
}

// printKey prints one key and its derivation path as aligned
// "name: value" lines.
func printKey(w io.Writer, k *keyShowResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, l := range [][2]string{
		{"key", k.KeyID},
		{"label", k.Label},
		{"quorum", fmt.Sprintf("%d-of-%d", k.Threshold, k.Parties)},
		{"committee", committee(k.Committee)},
		{"epoch", fmt.Sprint(k.Epoch)},
		{"created", created(k.Created)},
		{"public key", k.PublicKey},
		{"chain code", k.ChainCode},
		{"network", k.Network},
		{"btc address", k.BTCAddress},
		{"eth address", k.ETHAddress},
		{"path", k.Derived.Path},
		{"path public key", k.Derived.PublicKey},
		{"path btc address", k.Derived.BTCAddress},
		{"path eth address", k.Derived.ETHAddress},
		{"path xpub", k.Derived.XPub},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", l[0], l[1])
	}
	tw.Flush()
}

// printPools prints one aligned line per pool.
func printPools(w io.Writer, res *poolsListResult) {
	v := statusView{names: res.Names}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSIGNERS\tPATH\tINITIATOR\tTARGET\tREADY\tRESERVED\tMAKING\tMADE\tUSED\tBURNED\tDISCARDED\tFOREIGN\tERROR")
	for _, p := range res.Pools {
		owner := v.site(p.Initiator) + " (own)"
		if !p.Own {
			owner = v.site(p.Initiator) + " (held for it)"
		}
		foreign := fmt.Sprint(p.Foreign)
		if p.Foreign > 0 {
			foreign += " (last by " + v.site(p.ForeignBy) + ")"
		}
		errText := "-"
		if p.Error != "" {
			errText = oneLine(p.Error)
		}
		target := "-"
		if p.Own {
			target = fmt.Sprint(p.Target)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", p.KeyID, v.sites(partyIDs(p.Signers)), p.Path, owner, target,
			p.Ready, p.Reserved, p.Making, p.Made, p.Used, p.Burned, p.Discarded, foreign, errText)
	}
	tw.Flush()
}

// cmdKeysLabel sets (or, with --label "", removes) this site's label of a
// key.
func cmdKeysLabel(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("keys label", "kqnode keys label --home DIR --key ID --label NAME [--json]")
	key := f.String("key", "", "key ID (required)")
	label := f.String("label", "", "this site's name for the key, up to 64 bytes; \"\" removes it (required)")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	given := false
	f.Visit(func(fl *flag.Flag) { given = given || fl.Name == "label" })
	if *key == "" || !given {
		return usageErrorf("keys label: --key and --label are required (--label \"\" removes the label)\nusage: %s", f.synopsis)
	}
	if err := checkKeyID(*key); err != nil {
		return err
	}
	if *label != "" {
		if err := keyquorum.ValidKeyLabel(*label); err != nil {
			return usageErrorf("keys label: --label: %v\nusage: %s", err, f.synopsis)
		}
	}
	return c.request(ctx, e, "keys label", pathKeyLabel, keyLabelRequest{KeyID: *key, Label: *label}, &keyLabelRequest{})
}
