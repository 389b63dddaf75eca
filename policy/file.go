package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/crypto/ssh"
)

// Policy file bounds.
const (
	// MaxPolicySize bounds a policy file.
	MaxPolicySize = 1 << 20
	// MaxRules bounds the rules of a policy.
	MaxRules = 256
	// MaxRuleSize bounds one rule's expression.
	MaxRuleSize = 16 << 10
	// MaxApproverKeys bounds the approver keys of a policy.
	MaxApproverKeys = 1024
	// MaxListItems bounds the items of all lists of a policy together.
	MaxListItems = 100_000
	// MaxRequired bounds the approvals one group requirement asks for.
	MaxRequired = 32
)

// policyHeader is the directive every policy file starts with.
const policyHeader = "keyquorum-policy"

// Action is what a matching rule decides.
type Action string

// The actions of a rule.
const (
	// ActionAllow allows the request once its approvals are verified.
	// It never matches a raw-digest intent.
	ActionAllow Action = "allow"
	// ActionAllowRawDigest allows a raw-digest intent once its approvals
	// are verified. It matches only raw-digest intents: a policy signs raw
	// digests only when a rule says so explicitly.
	ActionAllowRawDigest Action = "allow-raw-digest"
	// ActionDeny refuses the request.
	ActionDeny Action = "deny"
)

// Requirement asks for Count approvals by distinct approvers of Group.
type Requirement struct {
	// Group names an approver group of the policy.
	Group string
	// Count is how many of its approvers must approve.
	Count int
}

// String returns "group=count".
func (r Requirement) String() string { return r.Group + "=" + strconv.Itoa(r.Count) }

// Rule describes one rule of a policy.
type Rule struct {
	// Name names the rule in decisions and refusals.
	Name string
	// Action is what the rule decides when its condition holds.
	Action Action
	// Require lists the approvals an allowing rule needs.
	Require []Requirement
	// Reason is the text a denying rule gives.
	Reason string
	// Line is the rule's line in the policy file.
	Line int
}

var (
	identRE    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	ruleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	approverRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)
	ethAddrRE  = regexp.MustCompile(`^0[xX][0-9a-fA-F]{40}$`)
)

// approverKeyTypes are the OpenSSH key types an approver may use.
var approverKeyTypes = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256}

// token is a word of a directive line and its column (from 1, in
// characters).
type token struct {
	text string
	col  int
}

// fields splits a line at spaces and tabs.
func fields(line string) []token {
	var out []token
	start, startCol, col := -1, 0, 0
	for i, r := range line + " " {
		col++
		if r == ' ' || r == '\t' {
			if start >= 0 {
				out = append(out, token{text: line[start:i], col: startCol})
				start = -1
			}
			continue
		}
		if start < 0 {
			start, startCol = i, col
		}
	}
	return out
}

// parser holds the state of Parse.
type parser struct {
	name string
	pol  *Policy
	// memberRefs and requireRefs are resolved once every approver and
	// group is known.
	memberRefs  []nameRef
	requireRefs []nameRef
	items       int
	listed      map[string]bool // "list\x00item"
	rule        *ruleDraft
	drafts      []*ruleDraft
}

type nameRef struct {
	name      string
	line, col int
	rule      *rule
	count     int
}

type ruleDraft struct {
	r     *rule
	line  int
	exprs []string
}

func (ps *parser) errorf(line, col int, format string, args ...any) error {
	return &FileError{File: ps.name, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads a policy file (FORMAT.md) and compiles its rules. name is
// used in errors, which are *FileError values naming name, the line and
// the column of the first problem: a syntax error, an unknown directive,
// an approver key of the wrong type, an undefined group or list, a rule
// that does not type-check or does not yield a bool.
func Parse(name string, src []byte) (*Policy, error) {
	if len(src) > MaxPolicySize {
		return nil, &FileError{File: name, Line: 1, Column: 1, Msg: fmt.Sprintf("file of %d bytes, at most %d", len(src), MaxPolicySize)}
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("policy: build rule environment: %w", err)
	}
	ps := &parser{name: name, listed: map[string]bool{}, pol: &Policy{
		name: name, env: env, maxValidity: DefaultApprovalValidity,
		approvers: map[string][]ssh.PublicKey{}, keys: map[string]approverKey{},
		groups: map[string][]string{}, lists: map[string][]string{},
	}}
	lines := strings.Split(string(src), "\n")
	header := false
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if !utf8.ValidString(line) {
			return nil, ps.errorf(n, 1, "line is not valid UTF-8")
		}
		if strings.ContainsRune(line, 0) {
			return nil, ps.errorf(n, 1, "line contains a NUL byte")
		}
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			if ps.rule != nil {
				ps.rule.exprs = append(ps.rule.exprs, "")
			}
			continue
		}
		if trimmed != line {
			if ps.rule == nil {
				return nil, ps.errorf(n, 1, "indented line outside a rule (a rule's condition goes on indented lines below its rule line)")
			}
			ps.rule.exprs = append(ps.rule.exprs, line)
			continue
		}
		if err := ps.finishRule(); err != nil {
			return nil, err
		}
		toks := fields(line)
		if !header {
			if toks[0].text != policyHeader {
				return nil, ps.errorf(n, 1, "the first directive must be %q", policyHeader+" 1")
			}
			if len(toks) != 2 || toks[1].text != "1" {
				return nil, ps.errorf(n, toks[0].col, "unsupported policy version (this build reads %q)", policyHeader+" 1")
			}
			header = true
			continue
		}
		if err := ps.directive(n, line, toks); err != nil {
			return nil, err
		}
	}
	if !header {
		return nil, ps.errorf(1, 1, "no %q line: not a policy file", policyHeader+" 1")
	}
	if err := ps.finishRule(); err != nil {
		return nil, err
	}
	if err := ps.resolve(); err != nil {
		return nil, err
	}
	return ps.pol, nil
}

// directive handles one non-indented line after the header.
func (ps *parser) directive(n int, line string, toks []token) error {
	p := ps.pol
	switch toks[0].text {
	case policyHeader:
		return ps.errorf(n, 1, "%s appears twice", policyHeader)
	case "approver":
		if len(toks) < 4 {
			return ps.errorf(n, 1, "want: approver NAME KEYTYPE BASE64 [COMMENT]")
		}
		name := toks[1]
		if !approverRE.MatchString(name.text) {
			return ps.errorf(n, name.col, "approver name %q: use up to 64 letters, digits and . _ @ + -", name.text)
		}
		keyText := line[byteOffset(line, toks[2].col):]
		key, _, opts, rest, err := ssh.ParseAuthorizedKey([]byte(keyText))
		if err != nil || len(opts) != 0 || len(rest) != 0 {
			return ps.errorf(n, toks[2].col, "approver %s: not an OpenSSH public key (KEYTYPE BASE64 [COMMENT], as in a .pub file)", name.text)
		}
		if !slices.Contains(approverKeyTypes, key.Type()) {
			return ps.errorf(n, toks[2].col, "approver %s: key type %s is not accepted (use %s)", name.text, key.Type(), strings.Join(approverKeyTypes, ", "))
		}
		if toks[2].text != key.Type() {
			return ps.errorf(n, toks[2].col, "approver %s: key is labelled %s but is a %s key", name.text, toks[2].text, key.Type())
		}
		if prev, dup := p.keys[string(key.Marshal())]; dup {
			return ps.errorf(n, toks[3].col, "key %s is already listed for approver %s", ssh.FingerprintSHA256(key), prev.approver)
		}
		if len(p.keys) >= MaxApproverKeys {
			return ps.errorf(n, 1, "more than %d approver keys", MaxApproverKeys)
		}
		p.keys[string(key.Marshal())] = approverKey{approver: name.text, key: key}
		p.approvers[name.text] = append(p.approvers[name.text], key)
	case "group":
		if len(toks) < 3 {
			return ps.errorf(n, 1, "want: group NAME APPROVER...")
		}
		g := toks[1]
		if !identRE.MatchString(g.text) {
			return ps.errorf(n, g.col, "group name %q: use a lower-case letter, then up to 63 lower-case letters, digits or _", g.text)
		}
		for _, m := range toks[2:] {
			if slices.Contains(p.groups[g.text], m.text) {
				return ps.errorf(n, m.col, "%s is already in group %s", m.text, g.text)
			}
			p.groups[g.text] = append(p.groups[g.text], m.text)
			ps.memberRefs = append(ps.memberRefs, nameRef{name: m.text, line: n, col: m.col})
		}
	case "list":
		if len(toks) < 2 {
			return ps.errorf(n, 1, "want: list NAME [ITEM...]")
		}
		l := toks[1]
		if !identRE.MatchString(l.text) {
			return ps.errorf(n, l.col, "list name %q: use a lower-case letter, then up to 63 lower-case letters, digits or _", l.text)
		}
		if _, ok := p.lists[l.text]; !ok {
			p.lists[l.text] = []string{}
		}
		for _, it := range toks[2:] {
			v, err := normalizeItem(it.text)
			if err != nil {
				return ps.errorf(n, it.col, "list %s: %v", l.text, err)
			}
			if ps.items++; ps.items > MaxListItems {
				return ps.errorf(n, it.col, "more than %d list items", MaxListItems)
			}
			if !ps.listed[l.text+"\x00"+v] {
				ps.listed[l.text+"\x00"+v] = true
				p.lists[l.text] = append(p.lists[l.text], v)
			}
		}
	case "approval-max-validity":
		if len(toks) != 2 {
			return ps.errorf(n, 1, "want: approval-max-validity DURATION (e.g. 24h)")
		}
		d, err := time.ParseDuration(toks[1].text)
		if err != nil || d < time.Minute || d > MaxRetention {
			return ps.errorf(n, toks[1].col, "approval-max-validity %q: want a duration from 1m to %s", toks[1].text, MaxRetention)
		}
		p.maxValidity = d
	case "rule":
		return ps.ruleLine(n, line, toks)
	default:
		return ps.errorf(n, 1, "unknown directive %q (want approver, group, list, rule or approval-max-validity)", toks[0].text)
	}
	return nil
}

// byteOffset returns the byte offset of character column col in line.
func byteOffset(line string, col int) int {
	off := 0
	for c := 1; c < col && off < len(line); c++ {
		_, size := utf8.DecodeRuneInString(line[off:])
		off += size
	}
	return off
}

// normalizeItem writes list items the way the views write them: Ethereum
// addresses in EIP-55 form, bech32 Bitcoin addresses in lower case.
func normalizeItem(s string) (string, error) {
	if ethAddrRE.MatchString(s) {
		sum := common.HexToAddress(s).Hex()
		body := s[2:]
		if body != strings.ToLower(body) && body != strings.ToUpper(body) && "0x"+body != sum {
			return "", fmt.Errorf("%s has a wrong EIP-55 checksum", s)
		}
		return sum, nil
	}
	lower := strings.ToLower(s)
	for _, hrp := range []string{"bc1", "tb1", "bcrt1"} {
		if strings.HasPrefix(lower, hrp) && (s == lower || s == strings.ToUpper(s)) {
			return lower, nil
		}
	}
	return s, nil
}

// ruleLine starts a rule: "rule NAME ACTION", then optional arguments.
func (ps *parser) ruleLine(n int, line string, toks []token) error {
	p := ps.pol
	if len(toks) < 3 {
		return ps.errorf(n, 1, "want: rule NAME allow|allow-raw-digest [GROUP=COUNT...] or rule NAME deny [REASON]")
	}
	name := toks[1]
	if !ruleNameRE.MatchString(name.text) {
		return ps.errorf(n, name.col, "rule name %q: use up to 64 lower-case letters, digits, _ and -", name.text)
	}
	for _, r := range p.rules {
		if r.Name == name.text {
			return ps.errorf(n, name.col, "rule %s is already defined on line %d", name.text, r.Line)
		}
	}
	if len(p.rules) >= MaxRules {
		return ps.errorf(n, 1, "more than %d rules", MaxRules)
	}
	r := &rule{Rule: Rule{Name: name.text, Action: Action(toks[2].text), Line: n}}
	switch r.Action {
	case ActionAllow, ActionAllowRawDigest:
		for _, t := range toks[3:] {
			g, cnt, ok := strings.Cut(t.text, "=")
			c, err := strconv.Atoi(cnt)
			if !ok || err != nil || !identRE.MatchString(g) || cnt != strconv.Itoa(c) {
				return ps.errorf(n, t.col, "approval requirement %q: want GROUP=COUNT, e.g. treasury=2", t.text)
			}
			if c < 1 || c > MaxRequired {
				return ps.errorf(n, t.col, "approval requirement %q: count must be 1 to %d", t.text, MaxRequired)
			}
			if slices.ContainsFunc(r.Require, func(q Requirement) bool { return q.Group == g }) {
				return ps.errorf(n, t.col, "group %s is required twice in rule %s", g, r.Name)
			}
			r.Require = append(r.Require, Requirement{Group: g, Count: c})
			ps.requireRefs = append(ps.requireRefs, nameRef{name: g, line: n, col: t.col, rule: r, count: c})
		}
	case ActionDeny:
		r.Reason = "denied by policy"
		if len(toks) > 3 {
			r.Reason = strings.TrimSpace(line[byteOffset(line, toks[3].col):])
		}
	default:
		return ps.errorf(n, toks[2].col, "rule action %q: want allow, allow-raw-digest or deny", toks[2].text)
	}
	p.rules = append(p.rules, r)
	ps.rule = &ruleDraft{r: r, line: n}
	return nil
}

// finishRule ends the rule being read, if any. Its condition is compiled
// by resolve, once every list and group is known.
func (ps *parser) finishRule() error {
	d := ps.rule
	if d == nil {
		return nil
	}
	ps.rule = nil
	for len(d.exprs) > 0 && strings.TrimSpace(d.exprs[len(d.exprs)-1]) == "" {
		d.exprs = d.exprs[:len(d.exprs)-1]
	}
	if len(d.exprs) == 0 {
		return ps.errorf(d.line, 1, "rule %s has no condition (write it on indented lines below the rule line; \"true\" matches everything)", d.r.Name)
	}
	if n := len(strings.Join(d.exprs, "\n")); n > MaxRuleSize {
		return ps.errorf(d.line, 1, "rule %s: condition of %d bytes, at most %d", d.r.Name, n, MaxRuleSize)
	}
	ps.drafts = append(ps.drafts, d)
	return nil
}

// compileRule compiles a rule's condition.
func (ps *parser) compileRule(d *ruleDraft) error {
	prg, pos, err := ps.pol.compile(strings.Join(d.exprs, "\n"))
	if err != nil {
		// CEL positions are 1-based lines within the condition and
		// 0-based columns; the condition starts on the line after the rule.
		line, col := d.line+1, 1
		if pos.line > 0 {
			line, col = d.line+pos.line, pos.col+1
		}
		return ps.errorf(line, col, "rule %s: %v", d.r.Name, err)
	}
	d.r.prg = prg
	return nil
}

// resolve checks group members and requirements once everything is read.
func (ps *parser) resolve() error {
	p := ps.pol
	for _, m := range ps.memberRefs {
		if _, ok := p.approvers[m.name]; !ok {
			return ps.errorf(m.line, m.col, "group member %s is not an approver (add an approver line)", m.name)
		}
	}
	for g := range p.groups {
		slices.Sort(p.groups[g])
	}
	for _, q := range ps.requireRefs {
		members, ok := p.groups[q.name]
		if !ok {
			return ps.errorf(q.line, q.col, "rule %s requires group %s, which is not defined", q.rule.Name, q.name)
		}
		if q.count > len(members) {
			return ps.errorf(q.line, q.col, "rule %s requires %d of group %s, which has %d members", q.rule.Name, q.count, q.name, len(members))
		}
	}
	for _, d := range ps.drafts {
		if err := ps.compileRule(d); err != nil {
			return err
		}
	}
	return nil
}
