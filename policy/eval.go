package policy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	"golang.org/x/crypto/ssh"
)

// RuleCostLimit is the CEL cost budget of one rule evaluation (cel-go's
// runtime cost units, roughly one per operation and list element visited).
// A rule that exceeds it fails, and the request is refused.
const RuleCostLimit = 100_000

// Policy is a parsed and compiled policy file: approvers and their SSH
// keys, approver groups, named lists and ordered rules. It is immutable and
// safe for concurrent use. Parse makes one.
type Policy struct {
	name        string
	env         *cel.Env
	maxValidity time.Duration
	approvers   map[string][]ssh.PublicKey
	keys        map[string]approverKey // by marshaled public key
	groups      map[string][]string    // sorted approver names
	lists       map[string][]string
	rules       []*rule
}

type approverKey struct {
	approver string
	key      ssh.PublicKey
}

type rule struct {
	Rule
	prg cel.Program
}

// Name returns the name the policy was parsed under.
func (p *Policy) Name() string { return p.name }

// Rules returns the rules in evaluation order.
func (p *Policy) Rules() []Rule {
	out := make([]Rule, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.Rule
		out[i].Require = slices.Clone(r.Require)
	}
	return out
}

// Approvers returns the approver names, sorted.
func (p *Policy) Approvers() []string {
	out := make([]string, 0, len(p.approvers))
	for a := range p.approvers {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// ApproverKeys returns the public keys of an approver, in file order.
func (p *Policy) ApproverKeys(approver string) []ssh.PublicKey {
	return slices.Clone(p.approvers[approver])
}

// velocityType is the CEL type of the velocity variable.
var velocityType = cel.ObjectType("policy.velocityView")

// newEnv builds the CEL environment every rule is compiled in (FORMAT.md,
// "What rules see").
func newEnv() (*cel.Env, error) {
	native := make([]any, 0, len(viewTypes)+1)
	native = append(native, ext.ParseStructTags(true))
	for _, v := range viewTypes {
		native = append(native, reflect.TypeOf(v))
	}
	obj := func(name string) *cel.Type { return cel.ObjectType("policy." + name) }
	strList := cel.ListType(cel.StringType)
	return cel.NewEnv(
		ext.NativeTypes(native...),
		ext.Strings(),
		cel.CrossTypeNumericComparisons(true),
		cel.Variable("kind", cel.StringType),
		cel.Variable("key", obj("keyView")),
		cel.Variable("path", cel.StringType),
		cel.Variable("paths", strList),
		cel.Variable("chain", cel.StringType),
		cel.Variable("now", cel.TimestampType),
		cel.Variable("warnings", strList),
		cel.Variable("spends", cel.ListType(obj("spendView"))),
		cel.Variable("btc", obj("bitcoinView")),
		cel.Variable("eth", obj("ethereumView")),
		cel.Variable("typed", obj("typedDataView")),
		cel.Variable("message", obj("messageView")),
		cel.Variable("raw", obj("rawView")),
		cel.Variable("lists", cel.MapType(cel.StringType, strList)),
		cel.Variable("approvals", cel.MapType(cel.StringType, cel.IntType)),
		cel.Variable("approvers", strList),
		cel.Variable("velocity", velocityType),
		cel.Function("spent", cel.MemberOverload("velocity_spent",
			[]*cel.Type{velocityType, cel.StringType, cel.DurationType}, cel.DoubleType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				w, ok := args[0].Value().(*velocityView)
				if !ok {
					return types.NewErr("velocity: not a velocity record")
				}
				sum, err := w.spent(string(args[1].(types.String)), args[2].Value().(time.Duration))
				if err != nil {
					return types.WrapErr(err)
				}
				return types.Double(roundUp(sum))
			}))),
		cel.Function("spent_to", cel.MemberOverload("velocity_spent_to",
			[]*cel.Type{velocityType, cel.StringType, cel.StringType, cel.DurationType}, cel.DoubleType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				w, ok := args[0].Value().(*velocityView)
				if !ok {
					return types.NewErr("velocity: not a velocity record")
				}
				sum, err := w.spentTo(string(args[1].(types.String)), string(args[2].(types.String)), args[3].Value().(time.Duration))
				if err != nil {
					return types.WrapErr(err)
				}
				return types.Double(roundUp(sum))
			}))),
	)
}

// VelocitySpendsPerCost is how many recorded spends one unit of CEL cost
// pays for: a velocity.spent or velocity.spent_to call scans the record, so
// it costs 1 plus the record's spends divided by this. A rule that calls
// them for each of thousands of outputs against a large record exhausts
// RuleCostLimit and refuses instead of running for seconds.
const VelocitySpendsPerCost = 100

// velocityCost charges a velocity call by the size of the record it scans.
func velocityCost(args []ref.Val, _ ref.Val) *uint64 {
	c := uint64(1)
	if len(args) > 0 {
		if w, ok := args[0].Value().(*velocityView); ok {
			c += uint64(w.size() / VelocitySpendsPerCost)
		}
	}
	return &c
}

// position is a 1-based line and 0-based column within a condition.
type position struct{ line, col int }

// compile compiles one rule condition. It must type-check to bool and may
// name only defined lists (lists.NAME) and groups (approvals.NAME).
func (p *Policy) compile(src string) (cel.Program, position, error) {
	checked, iss := p.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		errs := iss.Errors()
		e := errs[0]
		msg := e.Message
		if len(errs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
		}
		return nil, position{e.Location.Line(), e.Location.Column()}, errors.New(msg)
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		return nil, position{1, 0}, fmt.Errorf("condition has type %s, want bool", checked.OutputType())
	}
	if pos, err := p.checkNames(checked.NativeRep()); err != nil {
		return nil, pos, err
	}
	prg, err := p.env.Program(checked, cel.CostLimit(RuleCostLimit), cel.InterruptCheckFrequency(100),
		cel.CostTrackerOptions(
			interpreter.OverloadCostTracker("velocity_spent", velocityCost),
			interpreter.OverloadCostTracker("velocity_spent_to", velocityCost)))
	if err != nil {
		return nil, position{1, 0}, err
	}
	return prg, position{}, nil
}

// checkNames finds every use of lists and approvals and requires a
// defined name: lists.NAME or lists["NAME"], approvals.NAME or
// approvals["NAME"]. Any other use (a computed name) is refused, so that a
// misspelt name is an error when the file loads and not a refusal later.
func (p *Policy) checkNames(a *celast.AST) (position, error) {
	known := map[string]func(string) bool{
		"lists":     func(n string) bool { _, ok := p.lists[n]; return ok },
		"approvals": func(n string) bool { _, ok := p.groups[n]; return ok },
	}
	what := map[string]string{"lists": "list", "approvals": "group"}
	checkedIdents := map[int64]bool{}
	var (
		pos position
		err error
	)
	locate := func(id int64) position {
		l := a.SourceInfo().GetStartLocation(id)
		return position{l.Line(), l.Column()}
	}
	visit := func(e celast.Expr) {
		if err != nil {
			return
		}
		var operand celast.Expr
		var name string
		switch e.Kind() {
		case celast.SelectKind:
			operand, name = e.AsSelect().Operand(), e.AsSelect().FieldName()
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != "_[_]" || len(c.Args()) != 2 {
				return
			}
			operand = c.Args()[0]
			if c.Args()[1].Kind() == celast.LiteralKind {
				if s, ok := c.Args()[1].AsLiteral().(types.String); ok {
					name = string(s)
				}
			}
		default:
			return
		}
		if operand.Kind() != celast.IdentKind {
			return
		}
		id := operand.AsIdent()
		ok := known[id]
		if ok == nil {
			return
		}
		checkedIdents[operand.ID()] = true
		if name == "" {
			pos, err = locate(e.ID()), fmt.Errorf("%s must be indexed by a constant %s name (%s.NAME)", id, what[id], id)
		} else if !ok(name) {
			pos, err = locate(e.ID()), fmt.Errorf("%s.%s: no %s named %q in this policy", id, name, what[id], name)
		}
	}
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(visit))
	if err != nil {
		return pos, err
	}
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if err == nil && e.Kind() == celast.IdentKind && known[e.AsIdent()] != nil && !checkedIdents[e.ID()] {
			pos, err = locate(e.ID()), fmt.Errorf("%s must be indexed by a constant %s name (%s.NAME)", e.AsIdent(), what[e.AsIdent()], e.AsIdent())
		}
	}))
	return pos, err
}

// Input is what a site supplies to an evaluation besides the plan: its own
// clock, the approvals that came with the request, and its velocity record.
type Input struct {
	// Now is the site's clock. Rules see it as now; approvals expire by it;
	// velocity windows end at it. Required.
	Now time.Time
	// Approvals are the approvals that came with the request.
	Approvals []Approval
	// Velocity is the site's spending record; nil evaluates as if nothing
	// had been spent (Authorize requires one).
	Velocity *Velocity
}

// Decision is the outcome of evaluating a request against a policy. Every
// field is safe to log and to send to peers and to the requester.
type Decision struct {
	// Allowed reports whether the site may sign.
	Allowed bool
	// Rule names the rule that decided; empty when no rule matched.
	Rule string
	// Action is that rule's action.
	Action Action
	// Required lists the approvals the rule needs.
	Required []Requirement
	// Counted lists the approvers whose approvals satisfied Required.
	Counted []string
	// Approvers lists every approver whose approval verified, sorted.
	Approvers []string
	// Rejected lists the approvals that did not verify and why.
	Rejected []*ApprovalError
	// Reason says why, in a sentence.
	Reason string

	err error
}

// Err returns nil when the decision allows signing, and otherwise a
// *RefusedError with the rule and the reason.
func (d *Decision) Err() error { return d.err }

// String returns "allowed by rule R: reason" or the refusal.
func (d *Decision) String() string {
	if d.Allowed {
		return fmt.Sprintf("allowed by rule %s: %s", d.Rule, d.Reason)
	}
	return d.err.Error()
}

// Evaluate decides whether the site may sign plan: it verifies the
// approvals (VerifyApprovals), evaluates the rules in order with the
// site's clock and velocity record, and takes the first rule whose
// condition holds. A deny rule refuses. An allow rule allows when the
// verified approvals cover its requirements, each approver counted once
// even if it belongs to several required groups. No matching rule refuses
// (fail closed); so does a rule that cannot be evaluated. Raw-digest
// intents are matched only by allow-raw-digest and deny rules.
//
// Evaluate is pure: the same plan, input and policy give the same decision,
// and it records nothing. It returns the decision and, unless the decision
// allows, its Err (a *RefusedError). Only a cancelled context or an invalid
// call yields a nil decision.
func (p *Policy) Evaluate(ctx context.Context, plan *Plan, in Input) (*Decision, error) {
	return p.evaluate(ctx, plan, in)
}

// Authorize is Evaluate followed, when the decision allows, by recording
// the plan's spends in in.Velocity, with the record locked throughout so
// that concurrent requests cannot each use the same allowance. If the
// record is full the request is refused. The caller persists the record
// (MarshalBinary) before it releases a signature share.
func (p *Policy) Authorize(ctx context.Context, plan *Plan, in Input) (*Decision, error) {
	if in.Velocity == nil {
		return nil, fmt.Errorf("%w: Authorize needs the site's velocity record", ErrVelocity)
	}
	if err := checkCall(ctx, plan, in); err != nil {
		return nil, err
	}
	// Approvals do not depend on the record: verify them before taking
	// its lock, which concurrent requests wait for.
	valid, rejected := p.VerifyApprovals(plan, in.Approvals, in.Now)
	in.Velocity.mu.Lock()
	defer in.Velocity.mu.Unlock()
	d, err := p.decide(ctx, plan, in, valid, rejected, true)
	if err != nil || !d.Allowed {
		return d, err
	}
	if err := in.Velocity.recordLocked(plan, in.Now); err != nil {
		d.Allowed = false
		d.Reason = fmt.Sprintf("allowed by rule %s but the velocity record cannot take the spend: %v", d.Rule, err)
		d.err = &RefusedError{Rule: d.Rule, Reason: d.Reason, Kind: ErrVelocity}
		return d, d.err
	}
	return d, nil
}

// VerifyApprovals verifies approvals for plan at time now. It returns the
// approvers whose approvals verified, each once and in order of first
// appearance, and an error for every approval that did not count
// (including an approver's second approval).
func (p *Policy) VerifyApprovals(plan *Plan, approvals []Approval, now time.Time) ([]string, []*ApprovalError) {
	var (
		valid    []string
		rejected []*ApprovalError
	)
	for i, a := range approvals {
		if i >= MaxApprovals {
			rejected = append(rejected, &ApprovalError{Index: i, Err: fmt.Errorf("%w: more than %d approvals", ErrApprovalMalformed, MaxApprovals)})
			continue
		}
		who, err := p.verifyApproval(plan, a, now)
		switch {
		case err != nil:
			rejected = append(rejected, &ApprovalError{Index: i, Approver: who, Err: err})
		case slices.Contains(valid, who):
			rejected = append(rejected, &ApprovalError{Index: i, Approver: who, Err: fmt.Errorf("%w: %s approved twice", ErrApprovalDuplicate, who)})
		default:
			valid = append(valid, who)
		}
	}
	return valid, rejected
}

// checkCall validates the arguments of Evaluate and Authorize.
func checkCall(ctx context.Context, plan *Plan, in Input) error {
	if plan == nil || plan.Intent == nil || plan.Summary == nil || len(plan.Digests) == 0 {
		return fmt.Errorf("%w: no plan to evaluate (make one with Derive)", ErrIntent)
	}
	s := plan.Summary
	if Kind(s.Kind) != plan.Intent.kind ||
		(plan.Intent.kind == KindBitcoinPSBT && s.Bitcoin == nil) ||
		(plan.Intent.kind == KindEthereumTx && s.Ethereum == nil) ||
		((plan.Intent.kind == KindTypedData || plan.Intent.kind == KindPersonalMessage) && s.Message == nil) {
		return fmt.Errorf("%w: plan's summary does not describe its %s intent (make plans with Derive)", ErrIntent, plan.Intent.kind)
	}
	if in.Now.IsZero() {
		return errors.New("policy: Input.Now is required (the site's clock)")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("policy: evaluate: %w", err)
	}
	return nil
}

func (p *Policy) evaluate(ctx context.Context, plan *Plan, in Input) (*Decision, error) {
	if err := checkCall(ctx, plan, in); err != nil {
		return nil, err
	}
	valid, rejected := p.VerifyApprovals(plan, in.Approvals, in.Now)
	return p.decide(ctx, plan, in, valid, rejected, false)
}

// decide evaluates the rules given the verified approvals. locked is set
// when the caller holds in.Velocity's lock.
func (p *Policy) decide(ctx context.Context, plan *Plan, in Input, valid []string, rejected []*ApprovalError, locked bool) (*Decision, error) {
	d := &Decision{Approvers: slices.Sorted(slices.Values(valid)), Rejected: rejected}

	vars := activation(plan)
	vars["now"] = in.Now.UTC()
	vars["lists"] = p.lists
	vars["approvers"] = d.Approvers
	counts := make(map[string]int64, len(p.groups))
	for g, members := range p.groups {
		for _, m := range members {
			if slices.Contains(valid, m) {
				counts[g]++
			}
		}
	}
	vars["approvals"] = counts
	vars["velocity"] = &velocityView{v: in.Velocity, locked: locked, now: in.Now, plan: plan}

	raw := plan.Intent.kind == KindRawDigest
	for _, r := range p.rules {
		if (r.Action == ActionAllow && raw) || (r.Action == ActionAllowRawDigest && !raw) {
			continue
		}
		out, _, err := r.prg.ContextEval(ctx, vars)
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("policy: evaluate rule %s: %w", r.Name, cerr)
		}
		if err != nil {
			return d.refuse(r, ErrRuleFailed, fmt.Sprintf("rule could not be evaluated for this %s intent: %v", plan.Intent.kind, err))
		}
		if match, ok := out.Value().(bool); !ok {
			return d.refuse(r, ErrRuleFailed, "rule did not yield a bool")
		} else if !match {
			continue
		}
		d.Rule, d.Action, d.Required = r.Name, r.Action, slices.Clone(r.Require)
		if r.Action == ActionDeny {
			return d.refuse(r, ErrDenied, r.Reason)
		}
		counted, ok := p.cover(r.Require, valid)
		if !ok {
			return d.refuse(r, ErrApprovalsMissing, p.missing(r.Require, valid, rejected))
		}
		d.Allowed, d.Counted = true, counted
		d.Reason = "no approvals required"
		if len(r.Require) > 0 {
			d.Reason = fmt.Sprintf("%s approved by %s", requirementText(r.Require), strings.Join(counted, ", "))
		}
		return d, nil
	}
	reason := fmt.Sprintf("no rule matches this %s intent", plan.Intent.kind)
	if raw {
		reason += " (raw digests need a rule with action allow-raw-digest)"
	}
	return d.refuse(nil, ErrNoRule, reason)
}

func (d *Decision) refuse(r *rule, kind error, reason string) (*Decision, error) {
	if r != nil {
		d.Rule, d.Action = r.Name, r.Action
	}
	d.Allowed, d.Reason = false, reason
	d.err = &RefusedError{Rule: d.Rule, Reason: reason, Kind: kind}
	return d, d.err
}

func requirementText(req []Requirement) string {
	parts := make([]string, len(req))
	for i, q := range req {
		parts[i] = fmt.Sprintf("%d of %s", q.Count, q.Group)
	}
	return strings.Join(parts, " and ")
}

// cover assigns distinct approvers to the requirement's slots (bipartite
// matching by augmenting paths), so that nobody counts for two groups at
// once. It returns the approvers used, sorted.
func (p *Policy) cover(req []Requirement, valid []string) ([]string, bool) {
	var slots []string // one entry per approval needed, naming its group
	for _, q := range req {
		for range q.Count {
			slots = append(slots, q.Group)
		}
	}
	holder := make([]int, len(slots)) // index into valid, or -1
	for i := range holder {
		holder[i] = -1
	}
	var try func(a int, seen []bool) bool
	try = func(a int, seen []bool) bool {
		for s, g := range slots {
			if seen[s] || !slices.Contains(p.groups[g], valid[a]) {
				continue
			}
			seen[s] = true
			if holder[s] < 0 || try(holder[s], seen) {
				holder[s] = a
				return true
			}
		}
		return false
	}
	for a := range valid {
		try(a, make([]bool, len(slots)))
	}
	var used []string
	for _, a := range holder {
		if a < 0 {
			return nil, false
		}
		used = append(used, valid[a])
	}
	slices.Sort(used)
	return used, true
}

// missing explains unmet requirements.
func (p *Policy) missing(req []Requirement, valid []string, rejected []*ApprovalError) string {
	var b strings.Builder
	fmt.Fprintf(&b, "needs %s from distinct approvers", requirementText(req))
	var have []string
	for _, a := range valid {
		var gs []string
		for _, q := range req {
			if slices.Contains(p.groups[q.Group], a) {
				gs = append(gs, q.Group)
			}
		}
		if len(gs) > 0 {
			have = append(have, fmt.Sprintf("%s (%s)", a, strings.Join(gs, ", ")))
		}
	}
	if len(have) == 0 {
		b.WriteString("; no verified approval counts")
	} else {
		fmt.Fprintf(&b, "; verified: %s", strings.Join(have, ", "))
	}
	if len(rejected) > 0 {
		fmt.Fprintf(&b, "; rejected: %s", joinReasons(rejected))
	}
	return b.String()
}
