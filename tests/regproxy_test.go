package tests

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// regProxy is an HTTP proxy in front of a test registry that counts the
// blob downloads and can slow them down or cut them short.
type regProxy struct {
	addr string
	srv  *http.Server

	mu        sync.Mutex
	blobGets  map[string]int // digest → GET requests
	delay     time.Duration  // pause after every 64 KiB of a blob
	killAfter int64          // bytes of blob bodies before onKill runs; 0: never
	sent      int64
	onKill    func()
	killed    bool
}

func startProxy(t *testing.T, upstream string) *regProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &regProxy{addr: l.Addr().String(), blobGets: map[string]int{}}
	target, _ := url.Parse("http://" + upstream)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = nil
	rp.ModifyResponse = func(resp *http.Response) error {
		if i := strings.Index(resp.Request.URL.Path, "/blobs/"); i >= 0 && resp.Request.Method == http.MethodGet {
			digest := resp.Request.URL.Path[i+len("/blobs/"):]
			p.mu.Lock()
			p.blobGets[digest]++
			p.mu.Unlock()
			resp.Body = &proxyBody{p: p, r: resp.Body}
		}
		return nil
	}
	p.srv = &http.Server{Handler: rp, ErrorLog: nil}
	go p.srv.Serve(l)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// gets is how many times a blob was requested.
func (p *regProxy) gets(digest string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blobGets[digest]
}

// proxyBody passes a blob through, slowly when asked, and fails once the
// kill threshold is crossed.
type proxyBody struct {
	p *regProxy
	r io.ReadCloser
}

func (b *proxyBody) Read(buf []byte) (int, error) {
	if len(buf) > 64<<10 {
		buf = buf[:64<<10]
	}
	n, err := b.r.Read(buf)
	b.p.mu.Lock()
	b.p.sent += int64(n)
	delay := b.p.delay
	var kill func()
	if b.p.killAfter > 0 && b.p.sent >= b.p.killAfter && !b.p.killed {
		b.p.killed, kill = true, b.p.onKill
	}
	dead := b.p.killed
	b.p.mu.Unlock()
	if kill != nil {
		kill()
	}
	if dead {
		return 0, io.ErrUnexpectedEOF
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	return n, err
}

func (b *proxyBody) Close() error { return b.r.Close() }

// arm makes the proxy call onKill, and fail every blob read after it,
// once n more bytes of blobs went through; n 0 disarms it.
func (p *regProxy) arm(n int64, onKill func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent, p.killAfter, p.onKill, p.killed = 0, n, onKill, false
}

// slow pauses every blob read by d.
func (p *regProxy) slow(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}
