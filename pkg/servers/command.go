package servers

import (
	"context"
	"syscall"
	"time"
)

// Command is a program started with [StartCommand]: one of Freshet's own
// binaries run by the local stack, or any other process that must not
// outlive its caller. It gets what every server process gets here: its own
// process group, SIGKILL when the calling process dies, output appended to a
// log file.
type Command struct {
	p *process
}

// CommandOptions configures StartCommand.
type CommandOptions struct {
	// Name names the process in errors, e.g. "cdc-ingestor".
	Name string
	// Path is the executable; Args its arguments.
	Path string
	Args []string
	// Env is the whole environment of the process (nothing is inherited).
	Env []string
	// Dir is the working directory. Empty means the caller's.
	Dir string
	// LogFile receives stdout and stderr (appended). Required.
	LogFile string
}

// StartCommand starts a process. It returns once the process is started,
// not once it is ready: pair it with a readiness check of your own.
func StartCommand(opts CommandOptions) (*Command, error) {
	p, err := startProcessIn(opts.Name, opts.LogFile, opts.Dir, opts.Env, opts.Path, opts.Args...)
	if err != nil {
		return nil, err
	}
	return &Command{p: p}, nil
}

// Pid returns the process id, which is also its process group id.
func (c *Command) Pid() int { return c.p.pid() }

// Done is closed when the process has exited.
func (c *Command) Done() <-chan struct{} { return c.p.done }

// Err is the exit status once Done is closed (nil for a zero exit).
func (c *Command) Err() error {
	select {
	case <-c.p.done:
		return c.p.waitErr
	default:
		return nil
	}
}

// Output returns the tail of what the process wrote to its log since it
// started.
func (c *Command) Output() string { return c.p.output() }

// Stop sends SIGTERM, waits up to grace for the process to exit, then
// kills its process group. Safe to call more than once, and on a process
// that already exited.
func (c *Command) Stop(ctx context.Context, grace time.Duration) error {
	return c.p.stop(ctx, syscall.SIGTERM, grace)
}

// Kill sends SIGKILL to the whole process group and waits for it to be
// gone.
func (c *Command) Kill(ctx context.Context) error {
	return c.p.stop(ctx, syscall.SIGKILL, 0)
}
