package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/shipbot/shipbot/chat/local"
)

// chatIO is where a chat reads and writes: in a terminal (stdin and stdout
// both one), a line editor with history; piped, the plain streams.
type chatIO struct {
	lines       local.LineReader // a line editor, or nil: read in
	in          io.Reader
	out         io.Writer
	interactive bool
	close       func()
}

// openChatIO opens the chat's input and output. historyFile, when set,
// keeps the lines typed in a terminal across sessions (the demo's).
func openChatIO(stdin io.Reader, stdout io.Writer, historyFile string) (chatIO, error) {
	inF, inOK := stdin.(*os.File)
	outF, outOK := stdout.(*os.File)
	if !inOK || !local.IsTerminal(inF) {
		return chatIO{in: stdin, out: stdout, close: func() {}}, nil
	}
	if !outOK || !local.IsTerminal(outF) {
		// Typed, but the replies go to a file or a pipe: no line editor
		// (it would write its escapes there), a prompt on stdout.
		return chatIO{in: stdin, out: stdout, interactive: true, close: func() {}}, nil
	}
	hist := local.NewHistory()
	if historyFile != "" {
		h, err := local.OpenHistory(historyFile)
		if err != nil {
			return chatIO{}, fmt.Errorf("chat history: %w", err)
		}
		hist = h
	}
	t, err := local.OpenTerminal(inF, outF, hist)
	if err != nil {
		hist.Close()
		return chatIO{}, err
	}
	return chatIO{lines: t, out: t, interactive: true, close: func() {
		t.Close()
		hist.Close()
	}}, nil
}

// chatLog opens where `shipbot chat` logs (JSON, one event a line): the
// file given with --log ("-" is stderr); by default, when stderr is a
// terminal (a person reads the conversation there), shipbot.log beside the
// config, as the demo does; else stderr (a script, a service manager).
func chatLog(flagValue, cfgPath string, stderr io.Writer) (*slog.Logger, string, func(), error) {
	path := flagValue
	if path == "" {
		if f, ok := stderr.(*os.File); !ok || !local.IsTerminal(f) {
			path = "-"
		} else {
			path = filepath.Join(filepath.Dir(cfgPath), "shipbot.log")
		}
	}
	if path == "-" {
		return slog.New(slog.NewJSONHandler(stderr, nil)), "", func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, "", nil, usageError{fmt.Errorf("log file: %w (choose another with --log FILE, or --log - for stderr)", err)}
	}
	return slog.New(slog.NewJSONHandler(f, nil)), path, func() { f.Close() }, nil
}
