#include "discovery/dnsmasq.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#ifndef RLOG_DNSMASQ
#define RLOG_DNSMASQ "/usr/sbin/dnsmasq"
#endif

namespace rlog::discovery::testing {
namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both).
uint16_t FreePort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = Loopback(0);
    socklen_t len = sizeof(addr);
    uint16_t port = 0;
    if (bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(udp, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
      int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in same = Loopback(port);
      if (bind(tcp, reinterpret_cast<sockaddr*>(&same), sizeof(same)) != 0) port = 0;
      close(tcp);
    }
    close(udp);
    if (port != 0) return port;
  }
  return 0;
}

// A DNS query for "probe.<domain>" type A: any answer at all means the server is up.
std::string ProbeQuery() {
  std::string q = {'\x12', '\x34', '\x01', '\x00', '\x00', '\x01',
                   '\x00', '\x00', '\x00', '\x00', '\x00', '\x00'};
  std::string name = std::string("probe.") + Dnsmasq::kDomain;
  std::istringstream labels(name);
  for (std::string label; std::getline(labels, label, '.');) {
    q.push_back(static_cast<char>(label.size()));
    q += label;
  }
  q += std::string("\x00\x00\x01\x00\x01", 5);
  return q;
}

bool Answers(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = Loopback(port);
  bool ok = false;
  std::string query = ProbeQuery();
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      send(fd, query.data(), query.size(), 0) == static_cast<ssize_t>(query.size())) {
    pollfd p{fd, POLLIN, 0};
    char reply[512];
    ok = poll(&p, 1, 100) == 1 && recv(fd, reply, sizeof(reply), 0) > 0;
  }
  close(fd);
  return ok;
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return Status::IOError("cannot write " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) return Status::IOError("cannot rename " + tmp);
  return Status::Ok();
}

}  // namespace

bool Dnsmasq::Available() { return access(RLOG_DNSMASQ, X_OK) == 0; }

Dnsmasq::Dnsmasq(std::string dir) : dir_(std::move(dir)) {}

Dnsmasq::~Dnsmasq() { Stop(); }

std::string Dnsmasq::server() const { return "127.0.0.1:" + std::to_string(port_); }

std::string Dnsmasq::Log() const {
  std::ifstream in(dir_ + "/dnsmasq.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Status Dnsmasq::WriteHosts(const std::vector<DnsRecords::Host>& hosts) {
  std::string text;
  for (const DnsRecords::Host& h : hosts) text += h.ip + " " + h.name + "\n";
  return WriteFile(dir_ + "/hosts", text);
}

Status Dnsmasq::WriteConfig(const DnsRecords& records) {
  const passwd* user = getpwuid(geteuid());
  const group* grp = getgrgid(getegid());
  std::string text;
  text += "port=" + std::to_string(port_) + "\n";
  text += "listen-address=127.0.0.1\nbind-interfaces\n";
  text += "no-resolv\nno-poll\nno-hosts\n";
  text += "addn-hosts=" + dir_ + "/hosts\n";
  text += std::string("local=/") + kDomain + "/\n";  // Unknown names here: NXDOMAIN.
  text += "local-ttl=0\n";                           // Nothing is cached anywhere.
  text += "pid-file=" + dir_ + "/dnsmasq.pid\n";
  if (user != nullptr) text += std::string("user=") + user->pw_name + "\n";  // Stay who we are.
  if (grp != nullptr) text += std::string("group=") + grp->gr_name + "\n";
  text += "log-queries\n";
  for (const DnsRecords::Srv& s : records.srv) {
    text += "srv-host=" + s.service + "," + s.target + "," + std::to_string(s.port) + "\n";
  }
  return WriteFile(dir_ + "/dnsmasq.conf", text);
}

Status Dnsmasq::Start(const DnsRecords& records) {
  if (pid_ > 0) return Status::FailedPrecondition("dnsmasq is already running");
  if (port_ != 0) return StartOnPort(records);
  // A port free a moment ago may be taken before dnsmasq binds it (by any process on the
  // machine, e.g. a test running in parallel): then try another one.
  Status s;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    if (port_ == 0) return Status::Unavailable("no free loopback port");
    const size_t logged = Log().size();
    s = StartOnPort(records);
    if (s.ok() || Log().find("Address already in use", logged) == std::string::npos) return s;
    port_ = 0;
  }
  return s;
}

Status Dnsmasq::StartOnPort(const DnsRecords& records) {
  if (Status s = WriteHosts(records.hosts); !s.ok()) return s;
  if (Status s = WriteConfig(records); !s.ok()) return s;

  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::string conf = "--conf-file=" + dir_ + "/dnsmasq.conf";
  std::string log = dir_ + "/dnsmasq.log";
  const char* argv[] = {RLOG_DNSMASQ, "--no-daemon", conf.c_str(), nullptr};
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return Status::IOError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    execv(argv[0], const_cast<char* const*>(argv));
    _exit(127);
  }
  pid_ = pid;
  return WaitUntilListening(std::chrono::seconds(10));
}

Status Dnsmasq::WaitUntilListening(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Unavailable("dnsmasq exited at start:\n" + Log());
    }
    if (Answers(port_)) return Status::Ok();  // Each probe waits up to 100 ms for a reply.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Stop();
  return Status::Timeout("dnsmasq did not answer on " + server() + ":\n" + Log());
}

Status Dnsmasq::Restart(const DnsRecords& records) {
  Stop();
  return Start(records);
}

Status Dnsmasq::SetHosts(const std::vector<DnsRecords::Host>& hosts) {
  if (Status s = WriteHosts(hosts); !s.ok()) return s;
  if (pid_ <= 0 || kill(pid_, SIGHUP) != 0)
    return Status::FailedPrecondition("dnsmasq is not running");
  return Status::Ok();
}

void Dnsmasq::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  auto deadline = Clock::now() + std::chrono::seconds(3);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
}

}  // namespace rlog::discovery::testing
