package condition

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr/file"
)

// ErrInvalidRule reports a rule that does not compile. Every error
// [Compile] returns wraps it, most often as a [*CompileError].
var ErrInvalidRule = errors.New("condition: invalid rule")

// ErrEval reports an expression or tree that failed at run time. An error
// wrapping it means "does not match"; it is returned so the caller can
// report it, usually as an [*EvalError].
var ErrEval = errors.New("condition: evaluation failed")

// CompileError says where a rule is wrong and what was expected. It wraps
// [ErrInvalidRule].
type CompileError struct {
	// Part is the part of the rule at fault: "match", "fields", "expr" or
	// "tree".
	Part string
	// Path locates a tree error, such as "tree.any[1].value"; it is empty
	// for other parts.
	Path string
	// Line and Column locate an expression error (both 1-based; Column
	// counts characters); they are zero when there is no position.
	Line, Column int
	// Message says what is wrong.
	Message string
	// Snippet, when set, is the offending line of the expression with a
	// caret under the position, ready to be shown in a monospace font.
	Snippet string
}

// Error describes the mistake on one line: the part or tree path, the
// position when there is one, and the message.
func (e *CompileError) Error() string {
	var b strings.Builder
	b.WriteString("condition: invalid rule: ")
	if e.Path != "" {
		b.WriteString(e.Path)
	} else {
		b.WriteString(e.Part)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d, column %d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns [ErrInvalidRule].
func (e *CompileError) Unwrap() error { return ErrInvalidRule }

// EvalError reports a run-time failure of a rule's expression or tree. It
// wraps [ErrEval] and, when there is one, the underlying cause.
type EvalError struct {
	// Part is "expr" or "tree"; "input" when the input itself is unusable,
	// "internal" for a failure that is a bug in this package.
	Part string
	// Line and Column locate the failing operation in the expression, or
	// in the expression the tree compiles to (both 1-based); zero when
	// unknown.
	Line, Column int
	// Message says what failed.
	Message string
	// Err is the underlying cause, if any.
	Err error
}

// Error describes the failure on one line, with its position when known.
func (e *EvalError) Error() string {
	var b strings.Builder
	b.WriteString("condition: evaluation failed: ")
	b.WriteString(e.Part)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d, column %d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns [ErrEval] and the underlying cause.
func (e *EvalError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrEval}
	}
	return []error{ErrEval, e.Err}
}

// errLoopLimit is the cause of an EvalError for an expression that looped
// too long.
var errLoopLimit = fmt.Errorf("more than %d loop iterations", MaxLoopIterations)

func compileErrorFromExpr(part string, err error) *CompileError {
	var fe *file.Error
	if errors.As(err, &fe) {
		ce := &CompileError{Part: part, Message: fe.Message, Snippet: strings.TrimPrefix(fe.Snippet, "\n")}
		if fe.Line > 0 {
			ce.Line, ce.Column = fe.Line, fe.Column+1
		}
		return ce
	}
	return &CompileError{Part: part, Message: err.Error()}
}

func evalErrorFromExpr(part string, err error) *EvalError {
	var fe *file.Error
	if errors.As(err, &fe) {
		ee := &EvalError{Part: part, Message: fe.Message, Err: fe.Prev}
		if fe.Line > 0 {
			ee.Line, ee.Column = fe.Line, fe.Column+1
		}
		return ee
	}
	return &EvalError{Part: part, Message: err.Error(), Err: err}
}
