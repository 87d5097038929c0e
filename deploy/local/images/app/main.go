// Command app is the one program in the local stack's container images
// (deploy/local/images): a tiny HTTP server for the demo apps, the pause
// container of every pod sandbox, and a release that crashes on start.
// Standard library only, built static (CGO_ENABLED=0) by build.sh.
//
//	app [-port 8080]   serve / (APP and VERSION from the environment) and /healthz
//	app -pause         sleep until SIGTERM or SIGINT (the sandbox's pause container)
//	app -crash         exit 1 at once, with a termination message
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	port := flag.Int("port", 8080, "port to serve on")
	pause := flag.Bool("pause", false, "sleep until SIGTERM or SIGINT (pause container)")
	crash := flag.Bool("crash", false, "exit 1 at once (a release that crash-loops)")
	flag.Parse()
	name, version := os.Getenv("APP"), os.Getenv("VERSION")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch {
	case *crash:
		msg := fmt.Sprintf("%s %s: crashing on start (a bad release, on purpose)", name, version)
		fmt.Fprintln(os.Stderr, msg)
		// The kubelet shows this file as the container's termination message.
		os.WriteFile("/dev/termination-log", []byte(msg), 0o644)
		os.Exit(1)
	case *pause:
		<-ctx.Done()
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "%s %s\n", name, version) })
	srv := &http.Server{Addr: fmt.Sprintf(":%d", *port), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	fmt.Fprintf(os.Stderr, "%s %s listening on :%d\n", name, version, *port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
