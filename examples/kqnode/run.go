package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/transport"
)

const noPolicyWarning = "this site runs without a signing policy (kqnode run --policy FILE), so it signs nothing: " +
	"every signing request, its own and the other sites', is refused"

const fixtureWarning = "this site imported pre-parameter TEST FIXTURES (kqnode init --preparams-fixtures): " +
	"their secrets are public, so keys generated with them are not secret; use them for demos and tests only, never for value"

// loopbackAddr checks that addr is host:port with a loopback IP literal
// host: the control API is never exposed beyond this machine.
func loopbackAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--api %q: %w (want a loopback address such as 127.0.0.1:PORT)", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("--api %q: the control API listens on loopback only; give 127.0.0.1:PORT or [::1]:PORT (host names such as localhost are not accepted)", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--api %q: the port must be a number from 0 to 65535 (want a loopback address such as 127.0.0.1:PORT)", addr)
	}
	return nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "kqnode run --home DIR --peers FILE --policy FILE [--listen MULTIADDR,...] [--api 127.0.0.1:PORT] [flags]\n       kqnode run --home DIR --offline --bundle-peers FILE,... --committee ID --policy FILE [flags]  (a cold site)")
	homeDir := fs.String("home", "", "site home directory made by kqnode init (required)")
	peersFile := fs.String("peers", "", "peer file: JSON list of {\"peer_id\", \"addrs\"} for every site of the committee reached over libp2p (required unless --offline)")
	offlineMode := fs.Bool("offline", false, "a cold site: no libp2p host, no listening socket, nothing dialed; every other member is a bundle peer (--bundle-peers) and --peers is not taken")
	bundlePeersFiles := fs.String("bundle-peers", "", "bundle identity files (each made by `kqnode offline identity` on a site) of the members reached by bundle files, comma-separated; a file may hold one identity or a JSON list")
	committee := fs.String("committee", "", "with --bundle-peers: the committee ID every bundle names (a-z, 0-9, '.', '_', '-'), the same on every site")
	bundleTTL := fs.Duration("bundle-ttl", 0, "with --bundle-peers: how long an exported bundle stays valid (0: 24h; at most 720h)")
	policyFile := fs.String("policy", "", "this site's signing policy (policy/FORMAT.md; examples in examples/policies); without one the site runs but signs nothing")
	listen := fs.String("listen", strings.Join(transport.DefaultListenAddrs, ","), "libp2p listen multiaddrs, comma-separated")
	api := fs.String("api", "", "control API: empty (the default) for the Unix socket DIR/api.sock; 127.0.0.1:PORT or [::1]:PORT for TCP on loopback with TLS (port 0 picks a free port); the endpoint is written to DIR/api.json")
	ppTarget := fs.Int("preparams-target", keyquorum.DefaultPreParamsTarget, "Paillier pre-parameter sets kept ready; generated in the background (0: no background generation)")
	poolTarget := fs.Int("pool-target", 0, "ready GG20 presignatures kept in every pool this site presigned for (0: no background presigning)")
	roundTimeout := fs.Duration("round-timeout", keyquorum.DefaultRoundTimeout, "how long a protocol round waits for the other sites")
	joinTimeout := fs.Duration("join-timeout", keyquorum.DefaultJoinTimeout, "how long a proposal waits for the other sites to accept")
	sendTimeout := fs.Duration("send-timeout", transport.DefaultSendTimeout, "how long a message waits for an unreachable site")
	auditEvery := fs.Duration("audit-checkpoint-interval", keyquorum.DefaultAuditCheckpointInterval, "how often the site signs a checkpoint of its audit log and has the other sites cosign it (also at shutdown)")
	useWorker := fs.Bool("preparams-worker", true, "generate pre-parameter sets in a child kqnode preparams-worker at idle priority (Linux: SCHED_IDLE, nice 19); false: inside the site's process at its priority, where it never waits for an idle core (for hosts kept busy all the time); either way generation pauses while the site signs")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json")
	metricsListen := fs.String("metrics", "", "serve Prometheus /metrics, /healthz and /readyz on IP:PORT (loopback recommended, such as 127.0.0.1:9464; port 0 picks a free port); empty (the default): off")
	readyPeers := fs.Int("ready-peers", 0, "/readyz: other committee members that must be reachable (0: M-1 for the key with the largest M)")
	readyPreParams := fs.Int("ready-preparams", 0, "/readyz: pre-parameter sets that must be ready (0: not checked)")
	readyPresigs := fs.Int("ready-presignatures", 0, "/readyz: ready presignatures every pool must hold (0: not checked)")
	if err := fs.parse(args, stdout); err != nil {
		return err
	}
	if *homeDir == "" || (*peersFile == "" && !*offlineMode) {
		return usageErrorf("run: --home and --peers (or --offline with --bundle-peers) are required")
	}
	if *offlineMode && (*peersFile != "" || *bundlePeersFiles == "") {
		return usageErrorf("run: --offline runs a cold site: give its committee with --bundle-peers, not --peers")
	}
	if (*bundlePeersFiles == "") != (*committee == "") {
		return usageErrorf("run: --bundle-peers and --committee go together")
	}
	if *api != "" {
		if err := loopbackAddr(*api); err != nil {
			return usageErrorf("run: %v", err)
		}
	}
	if *ppTarget < 0 || *poolTarget < 0 {
		return usageErrorf("run: --preparams-target and --pool-target must not be negative")
	}
	if *readyPeers < 0 || *readyPreParams < 0 || *readyPresigs < 0 {
		return usageErrorf("run: --ready-peers, --ready-preparams and --ready-presignatures must not be negative")
	}
	if *metricsListen == "" && (*readyPeers != 0 || *readyPreParams != 0 || *readyPresigs != 0) {
		return usageErrorf("run: --ready-peers, --ready-preparams and --ready-presignatures set what /readyz checks; they need --metrics")
	}
	if *metricsListen != "" {
		if _, err := metricsAddr(*metricsListen); err != nil {
			return usageErrorf("run: %v", err)
		}
	}
	var worker []string
	if *useWorker {
		worker = preParamsWorkerCommand()
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageErrorf("run: --log-level %q: want debug, info, warn or error", *logLevel)
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	default:
		return usageErrorf("run: --log-format %q: want text or json", *logFormat)
	}
	log := slog.New(handler)

	// Everything the site trusts is checked before it is used: the home
	// and config.json, the module config.json names, the PIN file and the
	// peer file.
	absHome, err := filepath.Abs(*homeDir)
	if err != nil {
		return usageErrorf("run: --home %q: %v", *homeDir, err)
	}
	h := home{dir: absHome}
	if err := h.check(); err != nil {
		return err
	}
	cfg, err := h.loadConfig()
	if err != nil {
		return err
	}
	if err := checkModule(cfg.Module); err != nil {
		return moduleError(err, fmt.Sprintf(`"module" in %s (kqnode init --module wrote it; edit it if the library moved)`, h.path(configFile)))
	}
	if err := checkPINSource(cfg.PINSource); err != nil {
		return err
	}
	var peers []transport.Peer
	if *peersFile != "" {
		if peers, err = loadPeers(*peersFile); err != nil {
			return err
		}
	}
	var bundlePeers []keyquorum.BundlePeer
	if *bundlePeersFiles != "" {
		if bundlePeers, err = loadBundlePeers(*bundlePeersFiles); err != nil {
			return err
		}
	}
	var signing *policy.Policy
	if *policyFile != "" {
		if signing, err = loadPolicy(*policyFile); err != nil {
			return err
		}
	}
	// Earlier versions kept one API token for every run in this file;
	// operators' signatures replace it.
	if err := os.Remove(h.path(legacyTokenFile)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("remove the old API token file: %w", err)
	}
	operators, err := loadOperators(h)
	if err != nil {
		return err
	}
	var warnings []string
	if cfg.TestFixtures {
		warnings = append(warnings, fixtureWarning)
		log.Warn(fixtureWarning)
	}
	if signing == nil {
		warnings = append(warnings, noPolicyWarning)
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var (
		metricsLn  net.Listener
		metricsReg *prometheus.Registry
	)
	if *metricsListen != "" {
		if metricsLn, err = listenMetrics(*metricsListen, log); err != nil {
			return err
		}
		defer metricsLn.Close() // until the server owns it
		metricsReg = newMetricsRegistry()
	}

	node, err := keyquorum.Open(ctx, keyquorum.Config{
		HSM:             cfg.hsm(),
		SealKeyLabel:    cfg.SealKeyLabel,
		IdentityLabel:   cfg.IdentityLabel,
		StoreDir:        h.storeDir(),
		AllowNoTokenRNG: cfg.AllowNoTokenRNG,
		SigningPolicy:   signing,
		Peers:           peers,
		BundlePeers:     bundlePeers,
		BundleCommittee: *committee,
		BundleTTL:       *bundleTTL,
		// Every bundle must fit in one control-API request to be imported.
		BundleMaxSize: maxBundleFile,
		ListenAddrs:   splitList(*listen),
		// A target of 0 on the command line means "no background work";
		// the library's zero means "default".
		PreParamsTarget:         max(*ppTarget, 1),
		NoPreParamsGeneration:   *ppTarget == 0,
		PreParamsCommand:        worker,
		PoolTarget:              *poolTarget,
		RoundTimeout:            *roundTimeout,
		JoinTimeout:             *joinTimeout,
		SendTimeout:             *sendTimeout,
		AuditCheckpointInterval: *auditEvery,
		Metrics:                 registerer(metricsReg),
		Logger:                  log,
	})
	if errors.Is(err, hsmshare.ErrStoreLocked) {
		return fmt.Errorf("%w: another kqnode (run or init) is using %s", err, h.dir)
	}
	if err != nil {
		return err
	}
	defer node.Close()
	if string(node.PartyID()) != cfg.PeerID {
		return fmt.Errorf("%w: the token's identity key is peer %s, but %s was set up as %s: check the token in %s",
			errHomeMismatch,
			node.PartyID(), h.dir, cfg.PeerID, h.path(configFile))
	}

	var metricsSrv *metricsServer
	if metricsLn != nil {
		metricsSrv = serveMetrics(metricsLn, metricsReg, node, keyquorum.ReadinessConfig{
			MinPeers: *readyPeers, MinPreParams: *readyPreParams, MinPresignatures: *readyPresigs,
		}, log.With("component", "metrics"))
		defer metricsSrv.close()
	}

	apiLog := log.With("component", "api")
	ln, info, err := listenAPI(h, *api, defaultAPILimits, apiLog)
	if err != nil {
		return err
	}
	info.PID, info.PeerID = os.Getpid(), string(node.PartyID())
	endpoint := endpointString(info)
	srv := newAPIServer((&server{node: node, log: apiLog, auth: newAuthenticator(string(node.PartyID()), operators), operators: operators,
		home: h.dir, api: endpoint, warnings: warnings, names: peerNames(peers), writeTimeout: defaultAPILimits.Write}).handler(), ln, defaultAPILimits, apiLog)
	b, _ := json.Marshal(info)
	if err := writeFileAtomic(h.path(apiFile), append(b, '\n'), 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("write %s: %w", h.path(apiFile), err)
	}
	defer removeAPIFile(h, info.PID)

	// One JSON line on stdout tells scripts the site is up.
	rl := readyLine{Ready: true, PeerID: string(node.PartyID()), API: endpoint, Listen: node.Addrs()}
	if metricsLn != nil {
		rl.Metrics = "http://" + metricsLn.Addr().String()
	}
	ready, _ := json.Marshal(rl)
	fmt.Fprintln(stdout, string(ready))
	log.Info("site ready", "peer_id", string(node.PartyID()), "api", endpoint, "listen", strings.Join(node.Addrs(), ","),
		"metrics", rl.Metrics)

	err = srv.serve(ctx)
	log.Info("stopping", "reason", context.Cause(ctx))
	if metricsSrv != nil {
		if merr := metricsSrv.close(); merr != nil && err == nil {
			err = merr
		}
	}
	if cerr := node.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// checkPINSource checks the PIN file of a "file:" PIN source (see
// trust.go); hsmshare reads it afterwards.
func checkPINSource(src string) error {
	path, ok := strings.CutPrefix(src, "file:")
	if !ok {
		if v, ok := strings.CutPrefix(src, "env:"); ok {
			if _, set := os.LookupEnv(v); !set {
				return fmt.Errorf("%w: the PIN source is the environment variable %s, which is not set: set it to the token's user PIN", errPINUnavailable, v)
			}
		}
		return nil // or a source hsmshare reports as invalid
	}
	// file:///path is file:/path (RFC 8089), as hsmshare reads it.
	if rest, ok := strings.CutPrefix(path, "//"); ok && strings.HasPrefix(rest, "/") {
		path = rest
	}
	if err := checkTrusted(path, pinPolicy); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("%w: PIN file %s does not exist: write the token's user PIN into it (mode 0600), or run `kqnode init` again with another --pin-source: %w", errPINUnavailable, path, err)
		}
		return err
	}
	return nil
}

// loadPeers reads the peer file (checked, see trust.go).
func loadPeers(path string) ([]transport.Peer, error) {
	b, err := readTrusted(path, peersPolicy, transport.MaxPeerFileSize)
	if err != nil {
		return nil, err
	}
	peers, err := transport.ParsePeers(b)
	if err != nil {
		return nil, fmt.Errorf("peer file %s: %w", path, err)
	}
	return peers, nil
}

// readyLine is what run prints on stdout once the site serves requests.
type readyLine struct {
	Ready  bool   `json:"ready"`
	PeerID string `json:"peer_id"`
	// API is the endpoint: "unix:PATH" or "https://HOST:PORT".
	API    string   `json:"api"`
	Listen []string `json:"listen"`
	// Metrics is the metrics endpoint, "http://IP:PORT", with --metrics.
	Metrics string `json:"metrics,omitempty"`
}

// registerer is reg as a prometheus.Registerer, nil when reg is: a nil
// *prometheus.Registry in the interface would not read as "no metrics".
func registerer(reg *prometheus.Registry) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return reg
}

// removeAPIFile removes DIR/api.json if this process wrote it.
func removeAPIFile(h home, pid int) {
	if a, err := h.loadAPI(); err == nil && a.PID == pid {
		os.Remove(h.path(apiFile))
	}
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Unwrap() error { return errUsage }

func usageErrorf(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// flagSet is a command's flags and its one-line synopsis.
type flagSet struct {
	*flag.FlagSet
	synopsis string
}

func newFlagSet(name, synopsis string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, synopsis: synopsis}
}

// errHelp is returned after -h printed a command's help.
var errHelp = errors.New("help shown")

// parse parses args; -h prints the command's help on stdout.
func (f *flagSet) parse(args []string, stdout io.Writer) error {
	err := f.FlagSet.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "usage: %s\n\nflags:\n", f.synopsis)
		f.FlagSet.SetOutput(stdout)
		f.FlagSet.PrintDefaults()
		return errHelp
	}
	if err != nil {
		return usageErrorf("%s: %v\nusage: %s", f.Name(), err, f.synopsis)
	}
	if f.NArg() != 0 {
		return usageErrorf("%s: unexpected arguments %q\nusage: %s", f.Name(), f.Args(), f.synopsis)
	}
	return nil
}

// maxPolicySize bounds a policy file (policy/FORMAT.md's bound).
const maxPolicySize = 1 << 20

// loadPolicy reads the signing policy file after the trust checks every
// file the site relies on passes: a policy that others can edit is no
// policy. A file that does not parse or type-check stops the site with
// the line and column of the mistake.
func loadPolicy(path string) (*policy.Policy, error) {
	b, err := readTrusted(path, policyFilePolicy, maxPolicySize)
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse(path, b)
	if err != nil {
		return nil, fmt.Errorf("run: --policy: %w", err)
	}
	return p, nil
}
