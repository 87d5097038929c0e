// Package local is the terminal chat: one message per line on stdin, replies
// on stdout, as plain text (Slack's markup is rendered away). Piped, it
// processes every line, finishes the work it started and returns at end of
// input; in a terminal (a Terminal) the line is edited with the arrow keys
// and Up recalls earlier lines.
package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shipbot/shipbot/chat/command"
	"github.com/shipbot/shipbot/gitops"
)

// Handler is the part of the core the chat drives.
type Handler interface {
	Handle(ctx context.Context, req gitops.Request) gitops.Response
	Confirm(ctx context.Context, p *gitops.Plan) gitops.Response
	Cancel(p *gitops.Plan, why string) gitops.Response
	ConfirmTimeout() time.Duration
}

var _ Handler = (*gitops.Service)(nil)

// watcher is the optional part of a Handler that follows a landed change
// through the GitOps controller and reports progress.
type watcher interface {
	Watches() bool
	Watch(ctx context.Context, p *gitops.Plan, commit string, progress func(string)) gitops.Response
}

var _ watcher = (*gitops.Service)(nil)

// settler is the optional part of a Handler that finishes background work:
// the outcome of pushes it could not tell yet, reported through the chat
// (as a gitops.Notifier).
type settler interface {
	Settle(ctx context.Context) error
}

var _ settler = (*gitops.Service)(nil)

// The chat shows late news (a push's outcome found after the reply, a
// proposal's approvals) as a gitops.Notifier.
var _ gitops.Notifier = (*Chat)(nil)

// maxLine is how much of one line the chat keeps. A longer line is not a
// command (those are at most 4 KiB): it is answered, never kept whole, and
// the session goes on.
const maxLine = 64 * 1024

// Options configure a chat session.
type Options struct {
	User    string
	Channel string
	// Interactive shows a greeting and a prompt and does not echo the
	// lines read (stdin is a terminal). RunLines implies it.
	Interactive bool
	Now         func() time.Time
	Logger      *slog.Logger
}

// LineReader is input that edits and echoes its lines itself: a Terminal.
type LineReader interface {
	ReadLine() (string, error)
}

// prompter is output that shows the prompt itself, under the lines
// written: a Terminal.
type prompter interface {
	SetPrompt(string)
}

// Chat is one local chat session.
type Chat struct {
	h       Handler
	o       Options
	outMu   sync.Mutex // late news are written from other goroutines
	out     io.Writer
	session string
	seq     int
	pending map[string]*pending // per user: the plan waiting for their yes/no
}

type pending struct {
	plan     *gitops.Plan
	deadline time.Time
}

var userName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidUser checks a chat user name given on the command line or with /as.
func ValidUser(user string) error {
	if !userName.MatchString(user) {
		return fmt.Errorf("user %q: use 1 to 64 letters, digits, '.', '_' or '-'", user)
	}
	return nil
}

// New returns a chat session writing replies to out.
func New(h Handler, out io.Writer, o Options) (*Chat, error) {
	if err := ValidUser(o.User); err != nil {
		return nil, err
	}
	if o.Channel == "" {
		o.Channel = "#local"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Chat{h: h, o: o, out: out, session: strconv.FormatInt(o.Now().UnixNano(), 36), pending: map[string]*pending{}}, nil
}

// input is one line of input, or the size of a line too long to keep.
type input struct {
	text    string
	size    int  // bytes, without the line ending
	tooLong bool // over maxLine: text is empty
}

// readLines sends the lines of in, of any length: a line over maxLine is
// read to its end and sent as its size only.
func readLines(ctx context.Context, in io.Reader, lines chan<- input) error {
	br := bufio.NewReaderSize(in, 64*1024)
	for {
		var buf, chunk []byte
		size, tooLong := 0, false
		var tail []byte // the line's last two bytes
		var err error
		for {
			chunk, err = br.ReadSlice('\n')
			size += len(chunk)
			tail = append(tail, chunk[max(0, len(chunk)-2):]...)
			tail = tail[max(0, len(tail)-2):]
			if !tooLong && len(buf)+len(chunk) > maxLine+2 {
				tooLong, buf = true, nil
			}
			if !tooLong {
				buf = append(buf, chunk...)
			}
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if size == 0 && err != nil {
			return err
		}
		text := strings.TrimSuffix(strings.TrimSuffix(string(buf), "\n"), "\r")
		if n := len(tail); n > 0 && tail[n-1] == '\n' {
			size-- // the line ending is not part of the message
			if n > 1 && tail[n-2] == '\r' {
				size--
			}
		}
		if tooLong {
			text = ""
		}
		select {
		case lines <- input{text: text, size: size, tooLong: tooLong}:
		case <-ctx.Done():
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readEdited sends the lines of a LineReader.
func readEdited(ctx context.Context, in LineReader, lines chan<- input) error {
	for {
		text, err := in.ReadLine()
		if err != nil {
			return err
		}
		select {
		case lines <- input{text: text, size: len(text)}:
		case <-ctx.Done():
			return nil
		}
	}
}

// Run reads lines from in until end of input or ctx is done. A plan still
// waiting for an answer at the end is cancelled: nothing is written without
// yes. At the end of input it waits for the outcome of pushes the core could
// not tell yet, and shows it.
func (c *Chat) Run(ctx context.Context, in io.Reader) error {
	return c.run(ctx, func(lines chan<- input) error { return readLines(ctx, in, lines) })
}

// RunLines is Run on input that edits and echoes its lines itself (a
// Terminal): the session is interactive.
func (c *Chat) RunLines(ctx context.Context, in LineReader) error {
	c.o.Interactive = true
	return c.run(ctx, func(lines chan<- input) error { return readEdited(ctx, in, lines) })
}

func (c *Chat) run(ctx context.Context, read func(chan<- input) error) error {
	lines := make(chan input)
	readErr := make(chan error, 1)
	c.greet()
	if _, ok := c.out.(prompter); ok {
		c.prompt() // before the first line is read: the line editor shows it
	}
	go func() {
		readErr <- read(lines)
		close(lines)
	}()
	for {
		c.prompt()
		var expire <-chan time.Time
		var timer *time.Timer
		if first := c.firstDeadline(); !first.IsZero() {
			timer = time.NewTimer(time.Until(first))
			expire = timer.C
		}
		done, err := c.next(ctx, lines, readErr, expire)
		if timer != nil {
			timer.Stop()
		}
		if done {
			return err
		}
	}
}

// next waits for one event: a line, the pending plan's deadline, the end of
// input or of ctx. It reports whether the session is over.
func (c *Chat) next(ctx context.Context, lines <-chan input, readErr <-chan error, expire <-chan time.Time) (bool, error) {
	{
		select {
		case <-ctx.Done():
			c.cancelAll("shipbot is shutting down")
			return true, nil
		case <-expire:
			c.expire()
		case line, ok := <-lines:
			if !ok {
				c.cancelAll("end of input before an answer")
				if st, ok := c.h.(settler); ok {
					_ = st.Settle(ctx) // the outcomes arrive through ProposalUpdated
				}
				if err := <-readErr; err != nil && !errors.Is(err, io.EOF) {
					return true, fmt.Errorf("read input: %w", err)
				}
				return true, nil
			}
			if line.tooLong {
				c.tooLong(line.size)
				return false, nil
			}
			c.line(ctx, line.text)
		}
	}
	return false, nil
}

func (c *Chat) greet() {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.o.Interactive {
		fmt.Fprintf(c.out, "shipbot local chat: you are %s in %s. Type `help`, `/as USER` to switch user, Ctrl-D to quit.\n", c.o.User, c.o.Channel)
	}
}

func (c *Chat) prompt() {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if p, ok := c.out.(prompter); ok {
		p.SetPrompt(c.o.User + "> ")
		return
	}
	if c.o.Interactive {
		fmt.Fprintf(c.out, "%s> ", c.o.User)
	}
}

// say shows a reply as plain text: code blocks (a diff) indented in a
// terminal, left as they are when piped (a diff stays a diff).
func (c *Chat) say(text string) {
	indent := ""
	if c.o.Interactive {
		indent = "  "
	}
	text = Plain(strings.TrimRight(text, "\n"), indent)
	c.outMu.Lock()
	defer c.outMu.Unlock()
	fmt.Fprintln(c.out, text)
}

// echo shows a piped line as if it was typed.
func (c *Chat) echo(text string) {
	if c.o.Interactive {
		return
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	fmt.Fprintf(c.out, "%s> %s\n", c.o.User, text)
}

// ProposalUpdated shows late news about a request: the outcome of a push
// the core could not tell at once, or a proposal's progress.
func (c *Chat) ProposalUpdated(_ context.Context, u gitops.ProposalUpdate) {
	c.say(u.Text)
}

// tooLong answers a line over maxLine: the same answer as for any message
// over a command's limit; a plan waiting for yes or no keeps waiting.
func (c *Chat) tooLong(size int) {
	c.echo(fmt.Sprintf("(a message of %d bytes)", size))
	c.expire()
	msg := command.TooLong(size).Message
	c.o.Logger.Info("request rejected", "user", c.o.User, "channel", c.o.Channel, "reason", msg)
	if p := c.pending[c.o.User]; p != nil {
		msg += fmt.Sprintf("\nyour request %s is still waiting for `yes` or `no`.", p.plan.Request.ID)
	}
	c.say(msg)
}

// firstDeadline is the earliest deadline of the pending plans (zero if none).
func (c *Chat) firstDeadline() time.Time {
	var first time.Time
	for _, p := range c.pending {
		if first.IsZero() || p.deadline.Before(first) {
			first = p.deadline
		}
	}
	return first
}

// expire cancels the plans whose time to answer is over.
func (c *Chat) expire() {
	for _, user := range c.users() {
		if !c.o.Now().Before(c.pending[user].deadline) {
			c.cancel(user, fmt.Sprintf("no answer within %s", c.h.ConfirmTimeout()))
		}
	}
}

func (c *Chat) cancelAll(why string) {
	for _, user := range c.users() {
		c.cancel(user, why)
	}
}

// users lists who has a pending plan, in a stable order.
func (c *Chat) users() []string {
	users := make([]string, 0, len(c.pending))
	for u := range c.pending {
		users = append(users, u)
	}
	sort.Strings(users)
	return users
}

func (c *Chat) cancel(user, why string) {
	if p := c.pending[user]; p != nil {
		c.say(c.h.Cancel(p.plan, why).Text)
		delete(c.pending, user)
	}
}

// line handles one chat message.
func (c *Chat) line(ctx context.Context, line string) {
	text := strings.TrimSpace(line)
	if text == "" || strings.HasPrefix(text, "#") {
		return
	}
	c.echo(gitops.OneLine(text))
	c.expire()
	if rest, ok := strings.CutPrefix(text, "/as"); ok && (rest == "" || rest[0] == ' ') {
		user := strings.TrimSpace(rest)
		if err := ValidUser(user); err != nil {
			c.say("usage: /as USER (" + err.Error() + ")")
			return
		}
		c.o.User = user
		if _, ok := c.out.(prompter); ok {
			c.prompt() // the line editor redraws its prompt under the reply
		}
		c.say(fmt.Sprintf("you are now %s", user))
		return
	}
	// A plan that needs a typed answer ("yes, deploy v1.4.1": a tag never
	// deployed) is confirmed by that answer only; a bare yes is told which.
	if p := c.pending[c.o.User]; p != nil && p.plan.Confirmation != "" {
		if p.plan.Confirms(text) {
			delete(c.pending, c.o.User)
			p.plan.Answer = text
			c.confirm(ctx, p)
			return
		}
		switch strings.ToLower(text) {
		case "yes", "y", "confirm":
			c.say(fmt.Sprintf("your request %s needs the typed answer `%s` (or `no`); nothing was written.", p.plan.Request.ID, p.plan.Confirmation))
			return
		}
	}
	switch strings.ToLower(text) {
	case "yes", "y", "confirm":
		if p := c.pending[c.o.User]; p != nil {
			delete(c.pending, c.o.User)
			c.confirm(ctx, p)
		} else {
			c.nothingToAnswer("confirm")
		}
		return
	case "no", "n", "cancel":
		if c.pending[c.o.User] != nil {
			c.cancel(c.o.User, c.o.User+" said no")
		} else {
			c.nothingToAnswer("cancel")
		}
		return
	}
	// While a plan of this user waits for yes or no, read-only commands
	// are answered and the plan keeps waiting; anything that would plan is
	// told to answer first.
	waiting := c.pending[c.o.User]
	req, err := command.Parse(text)
	if err != nil {
		msg := err.Error()
		var ue *gitops.UserError
		if errors.As(err, &ue) {
			msg = ue.Message
		}
		c.o.Logger.Info("request rejected", "user", c.o.User, "channel", c.o.Channel, "reason", msg)
		if waiting != nil {
			msg += fmt.Sprintf("\nyour request %s is waiting for `yes` or `no` first.", waiting.plan.Request.ID)
		}
		c.say(msg)
		return
	}
	if waiting != nil && !command.ReadOnly(req.Action) {
		c.say(fmt.Sprintf("your request %s is waiting for `yes` or `no` first.\n"+
			"Answer it before asking for another change; read-only commands (%s) are answered meanwhile.",
			waiting.plan.Request.ID, command.ReadOnlyCommands()))
		return
	}
	c.handle(ctx, req, text)
	if waiting != nil && c.pending[c.o.User] == waiting {
		c.say(fmt.Sprintf("your request %s is still waiting for `yes` or `no`.", waiting.plan.Request.ID))
	}
}

// handle answers one parsed request.
func (c *Chat) handle(ctx context.Context, req gitops.Request, text string) {
	if req.Action == gitops.ActionHelp {
		if req.App != "" {
			c.say(command.Usage(gitops.Action(req.App)))
		} else {
			c.say(command.Help())
		}
		return
	}
	c.seq++
	req.User, req.Channel, req.At = c.o.User, c.o.Channel, c.o.Now()
	req.ID = gitops.NewRequestID("local", c.session, strconv.Itoa(c.seq), req.User, req.Channel, text)
	resp := c.h.Handle(ctx, req)
	c.say(resp.Text)
	if resp.Outcome == gitops.OutcomeCommitted && resp.Plan != nil {
		// The last approval merged a proposal: follow it like a confirmed change.
		if w, ok := c.h.(watcher); ok && w.Watches() {
			c.say(w.Watch(ctx, resp.Plan, resp.Commit, c.say).Text)
		}
	}
	if resp.Outcome == gitops.OutcomeConfirm && resp.Plan != nil && c.pending[c.o.User] == nil {
		c.pending[c.o.User] = &pending{plan: resp.Plan, deadline: c.o.Now().Add(c.h.ConfirmTimeout())}
	}
}

// nothingToAnswer explains a yes/no from someone with no plan of their own:
// only the requester can answer their plan.
// confirm lands a plan its requester confirmed, and follows it in Argo CD
// when the chat watches.
func (c *Chat) confirm(ctx context.Context, p *pending) {
	resp := c.h.Confirm(ctx, p.plan)
	c.say(resp.Text)
	if w, ok := c.h.(watcher); ok && w.Watches() && resp.Outcome == gitops.OutcomeCommitted {
		c.say(w.Watch(ctx, p.plan, resp.Commit, c.say).Text)
	}
}

func (c *Chat) nothingToAnswer(verb string) {
	for _, user := range c.users() {
		p := c.pending[user].plan
		c.say(fmt.Sprintf("only %s, who asked, can %s request %s", user, verb, p.Request.ID))
		return
	}
	c.say("there is nothing to confirm. Type `help` for the commands.")
}
