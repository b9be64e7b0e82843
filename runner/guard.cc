#include "runner/guard.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace chaosdrill::runner {
namespace {

absl::Weekday ToAbsl(scenarios::Weekday d) {
  static constexpr absl::Weekday kDays[] = {absl::Weekday::monday,    absl::Weekday::tuesday,
                                            absl::Weekday::wednesday, absl::Weekday::thursday,
                                            absl::Weekday::friday,    absl::Weekday::saturday,
                                            absl::Weekday::sunday};
  return kDays[static_cast<int>(d)];
}

std::string Hhmm(int minute) { return absl::StrFormat("%02d:%02d", minute / 60, minute % 60); }

}  // namespace

absl::Status CheckGuard(const scenarios::Guard& guard, absl::Time now) {
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(guard.timezone, &tz)) {
    return absl::InvalidArgumentError(
        absl::StrCat("guard.timezone: unknown time zone ", guard.timezone));
  }
  const absl::CivilMinute local = absl::ToCivilMinute(now, tz);
  const int minute = local.hour() * 60 + local.minute();
  const int start = guard.start_minute, end = guard.end_minute;
  // The day the window that contains `now` opened on (the window may have opened yesterday).
  absl::CivilDay opened = absl::CivilDay(local);
  bool in_window;
  if (start == end) {
    in_window = true;  // the whole day
  } else if (start < end) {
    in_window = minute >= start && minute < end;
  } else {  // wraps past midnight
    in_window = minute >= start || minute < end;
    if (minute < end) opened -= 1;  // the part after midnight belongs to yesterday's window
  }
  bool on_day = guard.days.empty();
  for (scenarios::Weekday d : guard.days) {
    if (ToAbsl(d) == absl::GetWeekday(opened)) on_day = true;
  }
  if (in_window && on_day) return absl::OkStatus();
  std::vector<std::string> days;
  for (scenarios::Weekday d : guard.days) days.emplace_back(scenarios::WeekdayName(d));
  return absl::FailedPreconditionError(
      absl::StrCat("outside the scenario's guard window (", Hhmm(start), "-", Hhmm(end),
                   days.empty() ? "" : absl::StrCat(" starting on ", absl::StrJoin(days, ", ")),
                   " ", guard.timezone, "; now ", absl::FormatTime("%a %H:%M", now, tz),
                   "); use --force to run anyway"));
}

}  // namespace chaosdrill::runner
