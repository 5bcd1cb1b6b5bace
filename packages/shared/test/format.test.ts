import { test } from "node:test";
import assert from "node:assert/strict";
import { humanBytes, humanDuration, humanNumber, humanRate, humanTime } from "../src/format.ts";

test("humanNumber: parameter counts as `ollama show` prints them", () => {
  assert.equal(humanNumber(8_030_261_248), "8.0B"); // Llama 3 8B
  assert.equal(humanNumber(70_000_000_000), "70B");
  assert.equal(humanNumber(3_212_749_824), "3.2B");
  assert.equal(humanNumber(8_000_000_000), "8B");
  assert.equal(humanNumber(22_714_000), "22.71M");
  assert.equal(humanNumber(7_000_000), "7M");
  assert.equal(humanNumber(260_000), "260K");
  assert.equal(humanNumber(1_499), "1K");
  assert.equal(humanNumber(999), "999");
  assert.equal(humanNumber(0), "0");
});

test("humanNumber and humanBytes round exact halves to even, like Go's %f", () => {
  assert.equal(humanNumber(2_500), "2K");
  assert.equal(humanNumber(3_500), "4K");
  assert.equal(humanNumber(1_125_000), "1.12M"); // 1.125 is exact in binary
  assert.equal(humanBytes(2_250_000_000), "2.2 GB");
  assert.equal(humanBytes(2_750_000_000), "2.8 GB");
});

test("humanBytes: decimal units, integer part from 10 up", () => {
  assert.equal(humanBytes(2_019_000_000), "2.0 GB");
  assert.equal(humanBytes(13_000_000_000), "13 GB");
  assert.equal(humanBytes(13_900_000_000), "13 GB");
  assert.equal(humanBytes(4_700_000_000), "4.7 GB");
  assert.equal(humanBytes(4_661_224_676), "4.7 GB");
  assert.equal(humanBytes(2_000_000_000), "2 GB");
  assert.equal(humanBytes(1_100_000_000), "1.1 GB");
  assert.equal(humanBytes(3_300_000_000_000), "3.3 TB");
  assert.equal(humanBytes(999_999), "999 KB");
  assert.equal(humanBytes(1_000_000), "1 MB");
  assert.equal(humanBytes(12_345_678), "12 MB");
  assert.equal(humanBytes(1_000), "1 KB");
  assert.equal(humanBytes(999), "999 B");
  assert.equal(humanBytes(0), "0 B");
});

test("humanRate appends /s to the byte count", () => {
  assert.equal(humanRate(12_400_000), "12 MB/s");
  assert.equal(humanRate(2_500_000.7), "2.5 MB/s");
  assert.equal(humanRate(0), "0 B/s");
});

test("humanDuration: the ETA of a progress bar", () => {
  assert.equal(humanDuration(3_000), "3s");
  assert.equal(humanDuration(62_000), "1m2s");
  assert.equal(humanDuration(61_600), "1m2s");
  assert.equal(humanDuration(400), "0s");
  assert.equal(humanDuration(0), "0s");
  assert.equal(humanDuration(3_599_000), "59m59s");
  assert.equal(humanDuration(3_599_600), "1h0m0s");
  assert.equal(humanDuration(3_600_000), "1h0m");
  assert.equal(humanDuration(2 * 3_600_000 + 5 * 60_000 + 59_000), "2h5m");
  assert.equal(humanDuration(100 * 3_600_000), "99h+");
});

const NOW = new Date("2025-06-01T12:00:00Z");
const ago = (ms: number): string => humanTime(new Date(NOW.getTime() - ms), NOW);
const ahead = (ms: number): string => humanTime(new Date(NOW.getTime() + ms), NOW);
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

test("humanTime: the zero time is Never", () => {
  assert.equal(humanTime(new Date(0), NOW), "Never");
  assert.equal(humanTime(new Date("0001-01-01T00:00:00Z"), NOW), "Never");
  assert.equal(humanTime(new Date(Number.NaN), NOW), "Never");
});

test("humanTime: seconds and minutes", () => {
  assert.equal(ago(0), "Less than a second ago");
  assert.equal(ago(999), "Less than a second ago");
  assert.equal(ago(1 * S), "1 second ago");
  assert.equal(ago(1999), "1 second ago");
  assert.equal(ago(2 * S), "2 seconds ago");
  assert.equal(ago(59 * S), "59 seconds ago");
  assert.equal(ago(60 * S), "About a minute ago");
  assert.equal(ago(119 * S), "About a minute ago");
  assert.equal(ago(2 * M), "2 minutes ago");
  assert.equal(ago(59 * M + 59 * S), "59 minutes ago");
});

test("humanTime: hours are rounded, then days, weeks, months, years", () => {
  assert.equal(ago(H), "About an hour ago");
  assert.equal(ago(H + 29 * M), "About an hour ago");
  assert.equal(ago(H + 30 * M), "2 hours ago");
  assert.equal(ago(47 * H), "47 hours ago");
  assert.equal(ago(47 * H + 29 * M), "47 hours ago");
  assert.equal(ago(47 * H + 30 * M), "2 days ago");
  assert.equal(ago(13 * D), "13 days ago");
  assert.equal(ago(14 * D), "2 weeks ago");
  assert.equal(ago(59 * D), "8 weeks ago");
  assert.equal(ago(60 * D), "2 months ago");
  assert.equal(ago(729 * D), "24 months ago");
  assert.equal(ago(730 * D), "2 years ago");
  assert.equal(ago(3650 * D), "10 years ago");
});

test("humanTime: the future, and Forever beyond 20 years", () => {
  assert.equal(ahead(4 * M + 59 * S), "4 minutes from now");
  assert.equal(ahead(5 * M), "5 minutes from now");
  assert.equal(ahead(30 * S), "30 seconds from now");
  assert.equal(ahead(3 * D), "3 days from now");
  assert.equal(ahead(20 * 365 * D), "20 years from now");
  // Go truncates the hours and the years: 21 whole years of 365 days are needed.
  assert.equal(ahead(21 * 365 * D - H), "20 years from now");
  assert.equal(ahead(21 * 365 * D), "Forever");
  assert.equal(humanTime(new Date("2318-08-11T00:00:00Z"), NOW), "Forever");
});
