// The HTML report in headless Chromium (Debian's chromium): the page loads from a file with
// no network, no JavaScript or console error and no resource load at all (a report is one
// self-contained file), the DOM has one fault band per fault, the page does not scroll
// sideways at 390 px (laid out in a 390 px frame), and light, phone and dark-mode screenshots are
// taken and checked for content and background colour. With CHAOSDRILL_REPORT_EXAMPLE=PATH the
// screenshot of the realistic (synthetic) record is kept there, to look at; the one in the
// docs, docs/report-demo.png, is a real demo run's report (how: docs/quickstart.md).
// Skips with a reason without chromium.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <regex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "reports/history.h"
#include "reports/html_writer.h"
#include "reports/run_record_json.h"
#include "tests/reports/record_fixture.h"
#include "tests/test_support.h"

namespace chaosdrill::reports {
namespace {

constexpr char kChromium[] = "/usr/bin/chromium";

std::vector<std::string> ChromiumArgs(const std::string& profile) {
  return {kChromium,
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--disable-quic",
          "--hide-scrollbars",
          "--user-data-dir=" + profile};
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_CASE("HTML report has no external references", "[reports][html]") {
  std::string html = RenderHtml(testing::SyntheticDrill({}));
  CHECK(Count(html, "http://") ==
        Count(html, "xmlns=\"http://www.w3.org/2000/svg\""));  // namespace name only
  CHECK(Count(html, "https://") == 0);
  CHECK(Count(html, "<script") == 0);
  CHECK(Count(html, "<link") == 0);
  CHECK(Count(html, "class=\"fault-band") == 2);
  CHECK(Count(html, "class=\"probe-strip\"") == 0);
}

TEST_CASE("HTML timeline: a strip per probe, red where failing, a marker where an alert fired",
          "[reports][html]") {
  RunRecord r = testing::SyntheticDrill({.duration_s = 40, .faults = 2, .probes = true});
  std::string html = RenderHtml(r);
  CHECK(Count(html, "class=\"probe-strip\"") == 2);
  // "ready" fails during each of the 2 outages; the alert fires once (13 s to 16 s).
  CHECK(Count(html, "class=\"probe-fail\"") == 3);
  CHECK(Count(html, "class=\"alert-marker\"") == 1);
  CHECK_THAT(html, Catch::Contains(">alert ReplicaDown fired<title>ReplicaDown first seen "
                                   "firing at 13s</title>"));
  CHECK_THAT(html, Catch::Contains("<title>replica-down firing 13s \xE2\x80\x93 16s: alert "
                                   "ReplicaDown firing (1 series)</title>"));
  CHECK_THAT(html, Catch::Contains("probe failing"));  // legend
  // The strips sit between the panels: the latency panel moves down by the strip block.
  RunRecord plain = testing::SyntheticDrill({.duration_s = 40, .faults = 2});
  CHECK_THAT(RenderHtml(plain), Catch::Contains("viewBox=\"0 0 1200 450\""));
  CHECK_THAT(html, Catch::Contains("viewBox=\"0 0 1200 504\""));
}

// Injected right after <head> of a copy of the page under test (the report itself has no
// script): records uncaught errors, failed element loads (capture phase), console.error
// and console.warn calls, every reference that would load something (src, link href,
// object data, SVG image/use, CSS url(); Chromium keeps no resource timing for file://),
// whether the dark colour scheme is active and the document's width, as attributes of
// <html> that --dump-dom shows.
constexpr char kProbe[] =
    "<script>(function(){var errs=[];"
    "window.addEventListener('error',function(e){errs.push(e.message||('failed to load '+"
    "((e.target&&(e.target.src||e.target.href))||'?')))},true);"
    "window.addEventListener('unhandledrejection',function(e){errs.push('rejection: '+e.reason)});"
    "['error','warn'].forEach(function(k){var o=console[k];console[k]=function(){"
    "errs.push('console.'+k+': '+Array.prototype.join.call(arguments,' '));o.apply(console,"
    "arguments)}});"
    "window.addEventListener('load',function(){var d=document.documentElement;"
    "d.setAttribute('data-probe-errors',JSON.stringify(errs));"
    "var loads=[];document.querySelectorAll('[src],link[href],object[data],image,"
    "use[href]:not([href^=\"#\"])').forEach(function(e){loads.push(e.tagName+' '+"
    "(e.getAttribute('src')||e.getAttribute('href')||e.getAttribute('data')))});"
    "Array.prototype.forEach.call(document.styleSheets,function(sh){"
    "Array.prototype.forEach.call(sh.cssRules,function(r){if(r.cssText.indexOf('url(')>=0)"
    "loads.push('css '+r.cssText.slice(0,80))})});"
    "document.querySelectorAll('[style]').forEach(function(e){if(e.getAttribute('style')"
    ".indexOf('url(')>=0)loads.push('style '+e.tagName)});"
    "d.setAttribute('data-probe-loads',JSON.stringify(loads));"
    "d.setAttribute('data-probe-dark',String(matchMedia('(prefers-color-scheme: dark)').matches));"
    "d.setAttribute('data-probe-width',d.scrollWidth+'/'+window.innerWidth)})})()</script>";

std::string WithProbe(const std::string& html) {
  size_t at = html.find("<head>");
  REQUIRE(at != std::string::npos);
  std::string out = html;
  out.insert(at + 6, kProbe);
  return out;
}

// Headless Chromium will not make a window narrower than 500 px, so the page is laid out
// at phone width inside a 390 px srcdoc iframe (same origin as its parent, so the parent can
// measure it; media queries inside see 390 px). The wrapper records the framed document's
// scrollWidth and the frame's innerWidth as data-probe-width.
std::string InPhoneFrame(const std::string& html) {
  std::string escaped;
  for (char c : html) {
    if (c == '&') {
      escaped += "&amp;";
    } else if (c == '"') {
      escaped += "&quot;";
    } else {
      escaped += c;
    }
  }
  return "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body style=\"margin:0\">"
         "<iframe id=\"f\" style=\"width:390px;height:1600px;border:0\" srcdoc=\"" +
         escaped +
         "\"></iframe><script>window.addEventListener('load',function(){"
         "var f=document.getElementById('f'),d=f.contentDocument.documentElement;"
         "document.documentElement.setAttribute('data-probe-width',"
         "d.scrollWidth+'/'+f.contentWindow.innerWidth)})</script></body></html>";
}

struct Probe {
  std::string dom;
  std::string errors;  // JSON array
  std::string loads;   // JSON array of references that load something
  std::string dark;    // "true" / "false"
  int scroll_width = -1, window_width = -1;
  std::vector<std::string> console;  // Chromium's own CONSOLE log lines
};

std::string Attribute(const std::string& dom, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex(name + "=\"([^\"]*)\""))) return "";
  std::string v = m[1];
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"&quot;", "\""},
                                 {"&lt;", "<"},
                                 {"&gt;", ">"},
                                 {"&amp;", "&"}}) {
    for (size_t at = v.find(from); at != std::string::npos; at = v.find(from, at + to.size())) {
      v.replace(at, from.size(), to);
    }
  }
  return v;
}

// Loads `html_path` (a probed copy) at `width` px and reads back what the probe saw.
Probe Load(const std::string& html_path, const std::string& profile, int width,
           const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = ChromiumArgs(profile);
  args.push_back("--enable-logging=stderr");
  args.push_back("--v=0");
  args.push_back("--window-size=" + std::to_string(width) + ",1600");
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("--dump-dom");
  args.push_back("file://" + html_path);
  chaosdrill::testing::CommandResult r = chaosdrill::testing::RunCommand(args, 120'000);
  INFO(r.err.substr(0, 3000));
  REQUIRE(r.exit_code == 0);
  Probe p;
  p.dom = r.out;
  p.errors = Attribute(r.out, "data-probe-errors");
  p.loads = Attribute(r.out, "data-probe-loads");
  p.dark = Attribute(r.out, "data-probe-dark");
  std::smatch m;
  std::string w = Attribute(r.out, "data-probe-width");
  if (std::regex_match(w, m, std::regex(R"((\d+)/(\d+))"))) {
    p.scroll_width = std::stoi(m[1]);
    p.window_width = std::stoi(m[2]);
  }
  for (absl::string_view line : absl::StrSplit(r.err, '\n')) {
    if (absl::StrContains(line, ":CONSOLE")) p.console.emplace_back(line);
  }
  return p;
}

// Reads a screenshot with a tiny PNG decoder (zlib + the five row filters) in Python:
// prints "width height mean-luminance-of-row-2 distinct-colours-in-the-first-300-rows".
struct Png {
  int width = 0, height = 0;
  double background = -1;  // 0 black .. 255 white, near the top edge
  int colours = 0;
};
Png ReadPng(const std::string& path) {
  chaosdrill::testing::CommandResult r = chaosdrill::testing::RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys,zlib,struct\n"
       "d=open(sys.argv[1],'rb').read(); assert d[:8]==b'\\x89PNG\\r\\n\\x1a\\n', 'not a PNG'\n"
       "i=8; z=b''\n"
       "while i<len(d):\n"
       "  n,t=struct.unpack('>I4s',d[i:i+8]); c=d[i+8:i+8+n]; i+=12+n\n"
       "  if t==b'IHDR': w,h,bd,ct=struct.unpack('>IIBB',c[:10])\n"
       "  elif t==b'IDAT': z+=c\n"
       "  elif t==b'IEND': break\n"
       "assert bd==8 and ct in (2,6), (bd,ct)\n"
       "bpp=3 if ct==2 else 4; st=w*bpp; raw=zlib.decompress(z); prev=bytearray(st); rows=[]\n"
       "for y in range(min(h,300)):\n"
       "  f=raw[y*(st+1)]; L=bytearray(raw[y*(st+1)+1:(y+1)*(st+1)])\n"
       "  for x in range(st):\n"
       "    a=L[x-bpp] if x>=bpp else 0; b=prev[x]; c=prev[x-bpp] if x>=bpp else 0\n"
       "    if f==1: L[x]=(L[x]+a)&255\n"
       "    elif f==2: L[x]=(L[x]+b)&255\n"
       "    elif f==3: L[x]=(L[x]+((a+b)>>1))&255\n"
       "    elif f==4:\n"
       "      p=a+b-c; pa=abs(p-a); pb=abs(p-b); pc=abs(p-c)\n"
       "      L[x]=(L[x]+(a if pa<=pb and pa<=pc else b if pb<=pc else c))&255\n"
       "  rows.append(bytes(L)); prev=L\n"
       "r=rows[2]; px=[r[k:k+3] for k in range(0,st,bpp)]\n"
       "lum=sum(0.299*p[0]+0.587*p[1]+0.114*p[2] for p in px)/len(px)\n"
       "cols=set(R[k:k+3] for R in rows for k in range(0,st,bpp))\n"
       "print(w,h,round(lum,1),len(cols))\n",
       path},
      120'000);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  Png png;
  std::istringstream in(r.out);
  in >> png.width >> png.height >> png.background >> png.colours;
  return png;
}

Png Screenshot(const std::string& html_path, const std::string& png, const std::string& profile,
               int width, int height, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = ChromiumArgs(profile);
  args.push_back("--window-size=" + std::to_string(width) + "," + std::to_string(height));
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("--screenshot=" + png);
  args.push_back("file://" + html_path);
  chaosdrill::testing::CommandResult s = chaosdrill::testing::RunCommand(args, 120'000);
  INFO(s.err.substr(0, 2000));
  REQUIRE(s.exit_code == 0);
  REQUIRE(std::filesystem::exists(png));
  Png p = ReadPng(png);
  std::cout << png << ": " << p.width << "x" << p.height << ", " << std::filesystem::file_size(png)
            << " bytes, background luminance " << p.background << ", " << p.colours
            << " colours in the top 300 rows\n";
  return p;
}

bool HaveChromium() {
  return !chaosdrill::testing::SkipUnless(
      access(kChromium, X_OK) == 0, "needs /usr/bin/chromium (scripts/install-deps.sh --report)");
}

TEST_CASE("the Chromium probe catches script errors, console errors and failed loads",
          "[reports][html][chromium]") {
  if (!HaveChromium()) return;
  // A negative control: the checks below would pass vacuously if the probe saw nothing.
  chaosdrill::testing::TempDir dir;
  std::string path =
      dir.Write("broken.html", WithProbe("<!DOCTYPE html><html><head><title>x</title></head><body>"
                                         "<img src=\"missing.png\"><script>console.error('boom');"
                                         "undefinedFunction();</script></body></html>"));
  Probe p = Load(path, dir.path() + "/profile", 800);
  INFO(p.errors);
  CHECK_THAT(p.errors, Catch::Contains("console.error: boom") &&
                           Catch::Contains("undefinedFunction is not defined") &&
                           Catch::Contains("failed to load file://" + dir.path() + "/missing.png"));
  CHECK_THAT(p.loads, Catch::Contains("IMG missing.png"));
  CHECK(p.console.size() >= 2);  // Chromium's log has the console.error and the exception
  CHECK(p.dark == "false");
  CHECK(Load(path, dir.path() + "/profile-dark", 800, {"--force-dark-mode"}).dark == "true");
  // And the phone-width frame sees a page that is too wide.
  Probe wide = Load(dir.Write("wide.html", InPhoneFrame("<!DOCTYPE html><html><body>"
                                                        "<div style=\"width:700px\">x</div>"
                                                        "</body></html>")),
                    dir.path() + "/profile-wide", 800);
  INFO("wide page at 390 px: " << wide.scroll_width << "/" << wide.window_width);
  CHECK(wide.window_width == 390);
  CHECK(wide.scroll_width > 700);
}

TEST_CASE("HTML report renders in headless Chromium with one band per fault",
          "[reports][html][chromium][slow]") {
  if (!HaveChromium()) return;
  chaosdrill::testing::TempDir dir;
  struct Page {
    std::string name;
    RunRecord record;
  };
  RunRecord nasty = testing::SmallRecord(true);
  std::vector<Page> pages = {
      {"drill", testing::SyntheticDrill({.duration_s = 60, .faults = 3, .probes = true})},
      {"small", nasty},
      {"empty", testing::EmptyRecord()}};
  for (const Page& p : pages) {
    INFO(p.name);
    const std::string html = RenderHtml(p.record);
    const std::string path = dir.Write(p.name + ".html", html);
    const std::string probed = dir.Write(p.name + ".probed.html", WithProbe(html));

    // Desktop width: loads clean, references nothing outside itself, one band per fault.
    Probe desk = Load(probed, dir.path() + "/profile-dom", 1280);
    for (const std::string& line : desk.console) UNSCOPED_INFO("console: " << line);
    CHECK_THAT(desk.dom, Catch::Contains("</html>"));
    CHECK(desk.errors == "[]");
    CHECK(desk.loads == "[]");
    CHECK(desk.console.empty());
    CHECK(desk.dark == "false");
    CHECK(Count(desk.dom, "class=\"fault-band") == p.record.faults.size());
    CHECK(Count(desk.dom, "class=\"probe-strip\"") == p.record.probes.size());
    size_t alerts = 0;
    for (const ProbeSeries& probe : p.record.probes) alerts += probe.kind == "alert" ? 1 : 0;
    CHECK(Count(desk.dom, "class=\"alert-marker\"") == alerts);  // each fires once here

    // Phone width: no horizontal scrolling of the page (wide tables scroll in their box).
    const std::string framed = dir.Write(p.name + ".phone.html", InPhoneFrame(html));
    Probe phone = Load(framed, dir.path() + "/profile-phone-dom", 800);
    std::cout << p.name << ": document scrollWidth/innerWidth at 390 px: " << phone.scroll_width
              << "/" << phone.window_width << "\n";
    CHECK(phone.window_width == 390);
    CHECK(phone.scroll_width <= phone.window_width);

    // Screenshots: light at 1280 px, phone at 390 px, dark at 1280 px. Each has content
    // (text and chart colours, not a blank page) and the scheme's background.
    const std::string png = dir.path() + "/" + p.name + ".png";
    Png light = Screenshot(path, png, dir.path() + "/profile-shot", 1280, 2400);
    CHECK(light.width == 1280);
    CHECK(light.background > 200);
    CHECK(light.colours > 8);
    const std::string phone_png = dir.path() + "/" + p.name + "-phone.png";
    Png small = Screenshot(path, phone_png, dir.path() + "/profile-phone", 390, 1600);
    CHECK(small.width == 390);
    CHECK(small.height == 1600);
    CHECK(small.colours > 8);
    CHECK(std::filesystem::file_size(phone_png) > 5'000);
    const std::string dark_png = dir.path() + "/" + p.name + "-dark.png";
    Png dark =
        Screenshot(path, dark_png, dir.path() + "/profile-dark", 1280, 2400, {"--force-dark-mode"});
    CHECK(dark.background < 60);
    CHECK(dark.colours > 8);
    CHECK(Load(probed, dir.path() + "/profile-dark-dom", 1280, {"--force-dark-mode"}).dark ==
          "true");

    if (const char* keep = std::getenv("CHAOSDRILL_REPORT_EXAMPLE"); keep && p.name == "drill") {
      std::filesystem::copy_file(png, keep, std::filesystem::copy_options::overwrite_existing);
      std::filesystem::copy_file(phone_png, std::string(keep) + ".phone.png",
                                 std::filesystem::copy_options::overwrite_existing);
    }
  }
}

}  // namespace
}  // namespace chaosdrill::reports
