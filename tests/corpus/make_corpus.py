"""Write the file corpus: malformed and localized CSV files, byte for byte.

Run once (`python tests/corpus/make_corpus.py`); the generated files are committed as
fixtures and read by tests/test_file_corpus.py, which never regenerates them. What each
file exercises and the outcome expected from the loader are in manifest.yml beside it.

Each file is spelled out as text plus the bytes that matter (encoding, BOM, line endings,
a missing final newline, invalid bytes), so a reader sees exactly what is on disk.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
FILES_DIR = HERE / "files"

NBSP = "\u00a0"  # no-break space: Russian and French spreadsheets group thousands with it
NNBSP = "\u202f"  # narrow no-break space: the same in newer Excel and CLDR locales
BOM = "\ufeff"


def rows(*lines: str, eol: str = "\n", final_eol: bool = True) -> str:
    """Lines joined by `eol`, with or without a newline after the last one."""
    return eol.join(lines) + (eol if final_eol else "")


def corpus() -> dict[str, bytes]:
    """File name -> exact bytes."""
    files: dict[str, bytes] = {}

    def text(name: str, content: str, encoding: str = "utf-8") -> None:
        files[name] = content.encode(encoding)

    # -- delimiters ---------------------------------------------------------------------
    semicolon_spend = (
        "date;channel;category;amount;currency",
        "2026-04-01;Google Ads;marketing;120,50;EUR",
        "2026-04-02;Meta Ads;marketing;80;EUR",
        "2026-04-02;;sales;1500,00;EUR",
    )
    text("spend__semicolon_declared_comma.csv", rows(*semicolon_spend))
    text(
        "spend__semicolon.csv",
        rows(*semicolon_spend, '2026-04-03;"LinkedIn; Sponsored";marketing;"12,5";EUR'),
    )
    text(
        "spend__tab_delimited.csv",
        rows(
            "date\tchannel\tcategory\tamount\tcurrency",
            "2026-04-01\tGoogle Ads\tmarketing\t1234.50\tEUR",
            "2026-04-02\tMeta, Instagram\tmarketing\t99.90\tEUR",
            "2026-04-03\tBing Ads\tmarketing\t12.00\tEUR\tstray",
            '2026-04-04\t"Quoted\tTab"\tmarketing\t5\tEUR',
        ),
    )

    # -- encodings ----------------------------------------------------------------------
    accented_deals = (
        "deal_id,deal_name,pipeline,stage,status,amount,currency,owner_name,created_at,closed_at",
        "D101,Société Générale renewal,direct,Proposal,open,4500.00,EUR,Zoë Åkesson,"
        "2026-03-02T09:15:00Z,",
        "D102,Smørrebrød ApS,direct,Closed Won,won,1200,DKK,Jürgen Weiß,"
        "2026-02-01T08:00:00Z,2026-03-15T16:30:00Z",
        "D103,東京 Trading,direct,Qualified,open,,,Łukasz Żółć,2026-03-20T11:00:00Z,",
    )
    text("deals__utf8_bom.csv", BOM + rows(*accented_deals))
    text("deals__utf8_no_bom.csv", rows(*accented_deals))
    text(
        "deals__windows_1251.csv",
        rows(
            "deal_id;deal_name;pipeline;stage;status;amount;currency;owner_name;company_id;"
            "created_at;closed_at",
            "R1;Поставка оборудования;Продажи;Переговоры;open;1 234,50 руб.;RUB;Иван Петров;"
            "ООО «Ромашка»;01.04.2026;",
            "R2;Лицензии №7;Продажи;Успешно реализовано;won;98 000 руб.;RUB;Мария Сидорова;"
            "АО «Вектор»;15.01.2026;20.03.2026",
            "R3;Сервис;Продажи;Переговоры;open;12 345 678,9 р.;RUB;Ёлкин Ёжиков;;02.04.2026;",
            "R4;Ошибка суммы;Продажи;Переговоры;open;1234,5,6 руб.;RUB;Пётр Ушаков;;02.04.2026;",
            eol="\r\n",
        ),
        encoding="windows-1251",
    )
    text(
        "deals__utf8_rub_nbsp.csv",
        rows(
            "deal_id;deal_name;pipeline;stage;status;amount;currency;owner_name;created_at;"
            "closed_at",
            f"R11;Внедрение CRM;Продажи;Переговоры;open;1{NBSP}234,50{NBSP}₽;RUB;"
            "Анна Кузнецова;03.04.2026;",
            f"R12;Аудит;Продажи;Переговоры;open;1{NNBSP}234{NNBSP}567,00 ₽;RUB;"
            "Анна Кузнецова;03.04.2026;",
            f"R13;Обучение;Продажи;Переговоры;open;₽{NBSP}500;RUB;Анна Кузнецова;03.04.2026;",
            f"R14;Скидка;Продажи;Переговоры;open;-1{NBSP}000,00 ₽;RUB;Анна Кузнецова;03.04.2026;",
            f"R15;Ошибка;Продажи;Переговоры;open;1{NBSP}23,50 ₽;RUB;Анна Кузнецова;03.04.2026;",
        ),
    )
    text(
        "deals__latin1.csv",
        rows(
            "deal_id;deal_name;pipeline;stage;status;amount;currency;owner_name;company_id;"
            "created_at;closed_at",
            "L1;Café Crème SARL;direct;Négociation;open;1.234,50;EUR;Françoise Lefèvre;"
            "Café Crème;05/03/2026;",
            "L2;Ñandú S.A.;direct;Ganado;won;12.000;EUR;José Muñoz;Ñandú;10/01/2026;28/02/2026",
            "L3;Ærø Værft;direct;Négociation;open;999,99 EUR;EUR;Søren Ødegård;;15/03/2026;",
        ),
        encoding="latin-1",
    )
    files["spend__invalid_utf8_bytes.csv"] = rows(
        "date,channel,category,amount,currency",
        "2026-04-01,Google Ads,marketing,10.00,EUR",
        "2026-04-02,Caf\udce9 Ads,marketing,11.00,EUR",  # 0xE9: Latin-1 é in a UTF-8 file
        "2026-04-03,Meta Ads,marketing,12.00,EUR",
    ).encode("utf-8", errors="surrogateescape")
    files["deals__windows_1251_invalid_byte.csv"] = rows(
        "deal_id;pipeline;stage;status;amount;currency;owner_name;created_at;closed_at",
        "R21;Продажи;Переговоры;open;100;RUB;Олег;01.04.2026;",
        "R22;Продажи;Переговоры;open;200;RUB;Ол\udc98ег;01.04.2026;",  # 0x98: unassigned
        "R23;Продажи;Переговоры;open;300;RUB;Ольга;01.04.2026;",
        eol="\r\n",
    ).encode("windows-1251", errors="surrogateescape")
    # A UTF-8 file declared Latin-1: every byte is valid Latin-1, so it loads as mojibake.
    text(
        "deals__utf8_declared_latin1.csv",
        rows(
            "deal_id,deal_name,pipeline,stage,status,amount,currency,created_at,closed_at",
            "D701,José Muñoz,direct,Proposal,open,100.00,EUR,2026-03-01T10:00:00Z,",
        ),
    )

    # -- numbers and currencies -----------------------------------------------------------
    text(
        "spend__decimal_comma_thousands_dot.csv",
        rows(
            "date;channel;category;amount;currency",
            "01.04.2026;Google Ads;marketing;1.234,50;EUR",
            "02.04.2026;Meta Ads;marketing;234,5;EUR",
            "03.04.2026;;sales;1.000.000;EUR",
            "04.04.2026;LinkedIn;marketing;1,234.50;EUR",
            "05.04.2026;Bing Ads;marketing;1.23,4;EUR",
        ),
    )
    text(
        "spend__thousands_comma.csv",
        rows(
            "date,channel,category,amount,currency",
            '04/01/2026,Google Ads,marketing,"1,234.50",USD',
            '04/02/2026,Meta Ads,marketing,"12,345,678.9",USD',
            "04/03/2026,Bing Ads,marketing,999.99,USD",
            "04/04/2026,LinkedIn,marketing,1,234.50,USD",
            '04/05/2026,Reddit,marketing,"1,23.4",USD',
        ),
    )
    text(
        "spend__currency_dollar.csv",
        rows(
            "date,channel,category,amount,currency",
            '2026-04-01,Google Ads,marketing,"$1,234.50",USD',
            "2026-04-02,Meta Ads,marketing,$99.90,USD",
            '2026-04-03,Bing Ads,marketing,"-$1,000.00",USD',
            "2026-04-04,LinkedIn,marketing,USD 250,USD",
            "2026-04-05,Reddit,marketing,$12.34.56,USD",
        ),
    )
    text(
        "spend__currency_euro.csv",
        rows(
            "date;channel;category;amount;currency",
            "01.04.2026;Google Ads;marketing;€ 99,90;EUR",
            "02.04.2026;Meta Ads;marketing;99,90 €;EUR",
            "03.04.2026;LinkedIn;marketing;1.234,50 EUR;EUR",
            "04.04.2026;Xing;marketing;EUR 1.234,50;EUR",
            "05.04.2026;Bing Ads;marketing;€ 99.90;EUR",
        ),
    )
    text(
        "deals__non_numeric_amount.csv",
        rows(
            "deal_id,pipeline,stage,status,amount,currency,created_at,closed_at",
            "D501,direct,Proposal,open,n/a,EUR,2026-03-01T10:00:00Z,",
            "D502,direct,Proposal,open,TBD,EUR,2026-03-01T10:00:00Z,",
            "D503,direct,Proposal,open,12 000,EUR,2026-03-01T10:00:00Z,",
            "D504,direct,Proposal,open,1e3,EUR,2026-03-01T10:00:00Z,",
            "D505,direct,Proposal,open,1_000,EUR,2026-03-01T10:00:00Z,",
            "D506,direct,Proposal,open,-250.75,EUR,2026-03-01T10:00:00Z,",
            "D507,direct,Proposal,open,,EUR,2026-03-01T10:00:00Z,",
            "D508,direct,Proposal,open,1500,EUR,2026-03-01T10:00:00Z,",
        ),
    )

    # -- dates, times and time zones --------------------------------------------------
    text(
        "spend__ambiguous_dates.csv",
        rows(
            "date,channel,category,amount,currency",
            "03/04/2026,Google Ads,marketing,10.00,EUR",
            "13/04/2026,Google Ads,marketing,11.00,EUR",
            "04/13/2026,Meta Ads,marketing,12.00,EUR",
            "05/05/2026,Meta Ads,marketing,13.00,EUR",
            "12/11/2026,Bing Ads,marketing,14.00,EUR",
            "31/31/2026,Bing Ads,marketing,15.00,EUR",
        ),
    )
    text(
        "spend__date_not_matching_format.csv",
        rows(
            "date,channel,category,amount,currency",
            "01.04.2026,Google Ads,marketing,10.00,EUR",
            "2026-04-02,Google Ads,marketing,11.00,EUR",
            "02/04/2026,Meta Ads,marketing,12.00,EUR",
            "31.02.2026,Meta Ads,marketing,13.00,EUR",
            "3.4.2026,Bing Ads,marketing,14.00,EUR",
        ),
    )
    text(
        "deal_stage_history__berlin_dst.csv",
        rows(
            "deal_id,stage,changed_at",
            "D1,Qualified,28.03.2026 12:00",
            "D1,Proposal,29.03.2026 01:59",
            "D1,Negotiation,29.03.2026 02:30",
            "D1,Closed Won,29.03.2026 03:00",
            "D2,Qualified,15.07.2026 18:45",
            "D2,Proposal,25.10.2026 01:30",
            "D2,Negotiation,25.10.2026 02:30",
            "D2,Closed Lost,25.10.2026 03:00",
        ),
    )
    text(
        "deals__berlin_iso_offsets.csv",
        rows(
            "deal_id,pipeline,stage,status,amount,currency,created_at,closed_at,updated_at",
            "D601,direct,Closed Won,won,100.00,EUR,2026-01-15 09:00:00,"
            "2026-07-01T10:00:00+03:00,2026-07-01T08:00:00Z",
            "D602,direct,Proposal,open,200.00,EUR,2026-07-15T09:00:00.123456,,",
            "D603,direct,Proposal,open,300.00,EUR,2026-03-29,,",
            "D604,direct,Proposal,open,400.00,EUR,2026-10-25 02:15:00,,",
            "D605,direct,Proposal,open,500.00,EUR,2026-07-15 09:00:00-05,,",
        ),
    )

    # -- structure: quotes, lines, columns ------------------------------------------------
    text(
        "deals__quoted_newlines.csv",
        rows(
            "deal_id,deal_name,pipeline,stage,status,amount,currency,created_at,closed_at",
            'D201,"Acme\nmulti-line\nname",direct,Proposal,open,100.00,EUR,2026-03-01T10:00:00Z,',
            "D202,Plain,direct,Proposal,open,not-a-number,EUR,2026-03-01T10:00:00Z,",
            'D203,"Quote ""inside"" and\r\nnewline",direct,Proposal,open,200.00,EUR,'
            "2026-03-01T10:00:00Z,",
            'D204,"Comma, inside",direct,Proposal,open,,EUR,,',
            "D205,Last,direct,Proposal,open,300.00,EUR,2026-03-01T10:00:00Z,",
        ),
    )
    text(
        "spend__duplicate_column.csv",
        rows(
            "date,channel,category,amount,currency,amount",
            "2026-04-01,Google Ads,marketing,10.00,EUR,12.00",
            "2026-04-02,Meta Ads,marketing,20.00,EUR,22.00",
        ),
    )
    text(
        "deals__missing_required_column.csv",
        rows(
            "deal_id,deal_name,pipeline,status,amount,currency,created_at,closed_at",
            "D301,No stage,direct,open,100.00,EUR,2026-03-01T10:00:00Z,",
            "D302,No stage either,direct,won,200.00,EUR,2026-03-01T10:00:00Z,2026-03-10T10:00:00Z",
        ),
    )
    text(
        "deals__extra_columns.csv",
        rows(
            "Deal_ID,Probability (%),deal_name,pipeline,stage,status,amount,currency,Notes,"
            "created_at,closed_at,owner_name",
            'D401,40,Extra columns,direct,Proposal,open,500.00,EUR,"call back, Tuesday",'
            "2026-03-01T10:00:00Z,,Ana Lima",
            "D402,100,Extra columns 2,direct,Closed Won,won,750.00,EUR,,2026-03-02T10:00:00Z,"
            "2026-03-20T10:00:00Z,Ana Lima",
        ),
    )
    files["spend__empty.csv"] = b""
    text("spend__header_only.csv", rows("date,channel,category,amount,currency"))
    text(
        "deal_stage_history__truncated_last_line.csv",
        rows(
            "deal_id,stage,changed_at",
            "D1,Qualified,2026-03-01T10:00:00Z",
            "D1,Proposal,2026-03-05T10:00:00Z",
            "D2,Qualif",
            final_eol=False,
        ),
    )
    text(
        "activities__unterminated_quote.csv",
        rows(
            "activity_id,deal_id,activity_type,occurred_at,owner_id",
            "A1,D1,call,2026-03-01T10:00:00Z,u1",
            "A2,D1,email,2026-03-02T10:00:00Z,u1",
            'A3,D1,"meeting,2026-03-03T10:00:00Z,u1',
        ),
    )
    text(
        "activities__blank_lines.csv",
        rows(
            "activity_id,deal_id,activity_type,occurred_at,owner_id",
            "A1,D1,call,2026-03-01T10:00:00Z,u1",
            "",
            "A2,D1,email,2026-03-02T10:00:00Z,u1",
            "",
            "",
            "A3,D2,meeting,2026-03-03T10:00:00Z,u2",
            "A4,,call,2026-03-04T10:00:00Z,u2",
            "",
        ),
    )
    text(
        "activities__crlf.csv",
        rows(
            "activity_id,deal_id,activity_type,occurred_at,owner_id",
            "A11,D1,call,2026-03-01T10:00:00Z,u1",
            'A12,D1,"note\r\nsecond line",2026-03-02T10:00:00Z,u1',
            "A13,D1,email,yesterday,u1",
            "A14,D2,meeting,2026-03-03T10:00:00Z,",
            eol="\r\n",
        ),
    )

    # -- values outside any real range (as of 2026-11-27: dates 1996-11-27 to 2031-11-27)
    text(
        "deals__implausible_values.csv",
        rows(
            "deal_id,pipeline,stage,status,amount,currency,created_at,closed_at,updated_at",
            "D601,direct,Won,won,1" + "0" * 40 + ",EUR,2026-03-01T10:00:00Z,2026-03-09T10:00:00Z,",
            "D602,direct,Proposal,open,999999999999999.99,EUR,2026-03-01T10:00:00Z,,",
            "D603,direct,Proposal,open,-1000000000000000,EUR,2026-03-01T10:00:00Z,,",
            "D604,direct,Won,won,100,EUR,2026-03-01T10:00:00Z,9999-12-31T00:00:00Z,",
            "D605,direct,Proposal,open,100,EUR,0001-01-01T00:00:00Z,,",
            "D606,direct,Proposal,open,100,EUR,2026-03-01T24:00:00Z,,",
            "D607,direct,Proposal,open,100,EUR,2026-03-01T10:00:00+25:00,,",
            "D608,direct,Proposal,open,100,EUR,2026-03-01 10:00:00 Europe/Berlin,,",
            "D609,direct,Proposal,open,100,EUR,2026-03-01 10:00:00 CET,,",
            "D610,direct,Proposal,open,100,EUR,10000-01-01T00:00:00Z,,",
            "D611,direct,Won,won,100,EUR,2026-03-05T10:00:00Z,2026-03-01T10:00:00Z,",
            "D612,direct,Proposal,open,100,EUR,1996-11-27T00:00:00Z,,",
            "D613,direct,Proposal,open,100,EUR,1996-11-26T23:59:59Z,,",
            "D614,direct,Proposal,open,100,EUR,2026-03-01T10:00:00+14:00,,",
            "D615,direct,Lost,lost,100,EUR,2026-03-01T10:00:00Z,2031-11-27T23:59:59Z,",
            "D616,direct,Proposal,open,100,EUR,2026-03-01T10:00:00Z,,2031-11-28T00:00:00Z",
        ),
    )
    text(
        "spend__implausible_dates.csv",
        rows(
            "date,channel,category,amount,currency",
            "1970-01-01,Google Ads,marketing,10.00,EUR",
            "2031-11-27,Google Ads,marketing,11.00,EUR",
            "2031-11-28,Google Ads,marketing,12.00,EUR",
            "2026-3-1,Google Ads,marketing,13.00,EUR",
            "2026-03-01T10:00:00Z,Google Ads,marketing,14.00,EUR",
            "1996-11-27,Google Ads,marketing,15.00,EUR",
        ),
    )
    # One file, three kinds of line break (a spreadsheet saved over a script's output):
    # CRLF after the header, LF, a lone CR, an LF inside quotes, CRLF, no final break.
    files["activities__mixed_line_breaks.csv"] = (
        b"activity_id,deal_id,activity_type,occurred_at,owner_id\r\n"
        b"A21,D1,call,2026-03-01T10:00:00Z,u1\n"
        b"A22,D1,email,2026-03-02T10:00:00Z,u1\r"
        b'A23,D1,"note\nmore",2026-03-03T10:00:00Z,u2\r\n'
        b"A24,D2,email,yesterday,u2\n"
        b"A25,D2,meeting,2026-03-04T10:00:00Z,u2"
    )

    # Two exports joined with `cat`: the second header is a record of the first file.
    activities_header = "activity_id,deal_id,activity_type,occurred_at,owner_id"
    text(
        "activities__header_repeated.csv",
        rows(
            activities_header,
            "A31,D1,call,2026-03-01T10:00:00Z,u1",
            activities_header,
            "A32,D2,email,2026-03-02T10:00:00Z,u2",
        ),
    )
    # A spreadsheet's "Unicode text": UTF-16 with a BOM, tab-separated.
    files["activities__utf16.csv"] = rows(
        activities_header.replace(",", "\t"),
        "A41\tD1\tcall\t2026-03-01T10:00:00Z\tu1",
        eol="\r\n",
    ).encode("utf-16")

    # -- reference data -----------------------------------------------------------------
    text(
        "deals__unknown_stage.csv",
        rows(
            "deal_id,deal_name,pipeline,stage,status,amount,currency,owner_id,owner_name,"
            "company_id,lead_source,created_at,closed_at,updated_at",
            "D9001,Legal review deal,direct,Legal Review,open,5000.00,EUR,u1,Alice Martin,C1,"
            "Google Ads,2026-02-10T09:00:00Z,,2026-02-12T09:00:00Z",
        ),
    )
    return files


def main() -> None:
    FILES_DIR.mkdir(parents=True, exist_ok=True)
    for name, content in sorted(corpus().items()):
        (FILES_DIR / name).write_bytes(content)
    print(f"wrote {len(corpus())} files to {FILES_DIR}")


if __name__ == "__main__":
    main()
