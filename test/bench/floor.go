package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/veil-ai/veil/internal/freeport"
	"github.com/veil-ai/veil/test/e2e"
)

// The transport floor: a bare net/http handler that reads the request body
// and answers with as many bytes as the model's output would take (4 bytes
// per row for 20 bytes of features per row), no decoding and no model. It
// runs in a child process, like veil-runtime, so both pay the same
// loopback and process costs.

const floorPath = "/floor"

// serveFloor is the child's main: listen on addr until killed.
func serveFloor(addr string) error {
	reply := make([]byte, 1<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST "+floorPath, func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(reply[:min(n/featureSize, int64(len(reply)))])
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// floorServer is the started child.
type floorServer struct {
	url string
	cmd *exec.Cmd
}

func startFloor(ctx context.Context) (*floorServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the floor server: %w", err)
	}
	port, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, self, "-floor-listen", addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start floor server: %w", err)
	}
	f := &floorServer{url: "http://" + addr, cmd: cmd}
	if err := e2e.PollHTTP(nil, f.url+"/ready", 20*time.Second); err != nil {
		f.stop()
		return nil, fmt.Errorf("floor server: %w", err)
	}
	return f, nil
}

func (f *floorServer) stop() {
	_ = f.cmd.Process.Kill()
	_ = f.cmd.Wait()
}

// op posts batch rows' worth of feature bytes and reads the reply.
func (f *floorServer) op(batch, clients int) newOp {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}}
	return func(c int) (op, error) {
		body := featureBytes(batch, c)
		return func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+floorPath, bytes.NewReader(body))
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("floor request: %w", err)
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil {
				return fmt.Errorf("floor reply: %w", err)
			}
			if resp.StatusCode != http.StatusOK || n != int64(4*batch) {
				return fmt.Errorf("floor reply: status %d, %d bytes", resp.StatusCode, n)
			}
			return nil
		}, nil
	}
}
