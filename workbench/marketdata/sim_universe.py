"""The sim provider's built-in universe: about 130 of the most traded US stocks and ETFs.

Each row gives the listing (primary exchange, name, sector) and the simulation parameters: the price
on 2025-01-01 the path is anchored to, annual volatility, drift and average daily volume. Prices and
volumes are round, plausible figures for that date, *not* market data: everything the sim produces is
simulated and labelled so. The listing details let the TWS emulator describe contracts as a gateway
does (long name, industry, category, primary exchange).
"""

from __future__ import annotations

__all__ = ["UNIVERSE_ROWS"]

# symbol | long name | primary exchange | kind | industry | category | price | vol | drift | volume (millions)
_TABLE = """
AAPL|APPLE INC|NASDAQ|STK|Technology|Computers|245|0.28|0.05|55
MSFT|MICROSOFT CORP|NASDAQ|STK|Technology|Software|420|0.25|0.05|22
GOOG|ALPHABET INC-CL C|NASDAQ|STK|Communications|Internet|190|0.30|0.05|25
GOOGL|ALPHABET INC-CL A|NASDAQ|STK|Communications|Internet|189|0.30|0.05|30
AMZN|AMAZON.COM INC|NASDAQ|STK|Communications|Internet|220|0.32|0.05|40
META|META PLATFORMS INC-CLASS A|NASDAQ|STK|Communications|Internet|590|0.38|0.05|15
NVDA|NVIDIA CORP|NASDAQ|STK|Technology|Semiconductors|135|0.50|0.05|250
TSLA|TESLA INC|NASDAQ|STK|Consumer, Cyclical|Auto Manufacturers|400|0.60|0.05|95
AMD|ADVANCED MICRO DEVICES|NASDAQ|STK|Technology|Semiconductors|121|0.50|0.05|40
INTC|INTEL CORP|NASDAQ|STK|Technology|Semiconductors|20|0.45|0.00|60
AVGO|BROADCOM INC|NASDAQ|STK|Technology|Semiconductors|232|0.45|0.05|25
QCOM|QUALCOMM INC|NASDAQ|STK|Technology|Semiconductors|154|0.35|0.05|8
MU|MICRON TECHNOLOGY INC|NASDAQ|STK|Technology|Semiconductors|84|0.50|0.05|22
TXN|TEXAS INSTRUMENTS INC|NASDAQ|STK|Technology|Semiconductors|187|0.28|0.05|6
ARM|ARM HOLDINGS PLC-ADR|NASDAQ|STK|Technology|Semiconductors|123|0.65|0.05|6
SMCI|SUPER MICRO COMPUTER INC|NASDAQ|STK|Technology|Computers|30|0.90|0.00|40
CSCO|CISCO SYSTEMS INC|NASDAQ|STK|Communications|Telecommunications|59|0.20|0.04|18
ADBE|ADOBE INC|NASDAQ|STK|Technology|Software|445|0.32|0.04|3
NFLX|NETFLIX INC|NASDAQ|STK|Communications|Internet|891|0.35|0.05|3
PYPL|PAYPAL HOLDINGS INC|NASDAQ|STK|Financial|Commercial Services|85|0.35|0.04|10
PLTR|PALANTIR TECHNOLOGIES INC-A|NASDAQ|STK|Technology|Software|76|0.70|0.05|70
COIN|COINBASE GLOBAL INC -CLASS A|NASDAQ|STK|Financial|Diversified Finan Serv|248|0.75|0.05|10
MSTR|STRATEGY INC|NASDAQ|STK|Technology|Software|290|0.90|0.05|18
MARA|MARA HOLDINGS INC|NASDAQ|STK|Financial|Diversified Finan Serv|16.8|0.90|0.00|40
RIOT|RIOT PLATFORMS INC|NASDAQ|STK|Financial|Diversified Finan Serv|10.2|0.85|0.00|25
SOFI|SOFI TECHNOLOGIES INC|NASDAQ|STK|Financial|Diversified Finan Serv|15.4|0.60|0.05|50
HOOD|ROBINHOOD MARKETS INC - A|NASDAQ|STK|Financial|Diversified Finan Serv|37.3|0.70|0.05|25
RIVN|RIVIAN AUTOMOTIVE INC-A|NASDAQ|STK|Consumer, Cyclical|Auto Manufacturers|13.3|0.65|0.00|35
LCID|LUCID GROUP INC|NASDAQ|STK|Consumer, Cyclical|Auto Manufacturers|3.02|0.70|-0.10|60
ROKU|ROKU INC|NASDAQ|STK|Communications|Internet|74|0.55|0.04|4
ZM|ZOOM COMMUNICATIONS INC|NASDAQ|STK|Technology|Software|81.6|0.35|0.03|3
DKNG|DRAFTKINGS INC-CL A|NASDAQ|STK|Consumer, Cyclical|Entertainment|37.2|0.50|0.05|9
ABNB|AIRBNB INC-CLASS A|NASDAQ|STK|Communications|Internet|131|0.40|0.04|5
AMGN|AMGEN INC|NASDAQ|STK|Consumer, Non-cyclical|Biotechnology|260|0.25|0.04|3
GILD|GILEAD SCIENCES INC|NASDAQ|STK|Consumer, Non-cyclical|Biotechnology|92|0.24|0.04|8
MRNA|MODERNA INC|NASDAQ|STK|Consumer, Non-cyclical|Biotechnology|41.6|0.60|-0.05|10
PEP|PEPSICO INC|NASDAQ|STK|Consumer, Non-cyclical|Beverages|152|0.16|0.03|7
COST|COSTCO WHOLESALE CORP|NASDAQ|STK|Consumer, Cyclical|Retail|916|0.22|0.05|2
SBUX|STARBUCKS CORP|NASDAQ|STK|Consumer, Cyclical|Retail|91|0.30|0.04|9
CMCSA|COMCAST CORP-CLASS A|NASDAQ|STK|Communications|Media|37.5|0.25|0.02|20
TMUS|T-MOBILE US INC|NASDAQ|STK|Communications|Telecommunications|220.7|0.22|0.05|4
HON|HONEYWELL INTERNATIONAL INC|NASDAQ|STK|Industrial|Miscellaneous Manufactur|226|0.20|0.04|4
AAL|AMERICAN AIRLINES GROUP INC|NASDAQ|STK|Consumer, Cyclical|Airlines|17.4|0.45|0.03|30
UAL|UNITED AIRLINES HOLDINGS INC|NASDAQ|STK|Consumer, Cyclical|Airlines|97|0.45|0.05|7
ORCL|ORACLE CORP|NYSE|STK|Technology|Software|167|0.35|0.05|10
CRM|SALESFORCE INC|NYSE|STK|Technology|Software|334|0.32|0.05|6
IBM|INTL BUSINESS MACHINES CORP|NYSE|STK|Technology|Computers|220|0.24|0.05|4
UBER|UBER TECHNOLOGIES INC|NYSE|STK|Industrial|Transportation|60|0.40|0.05|20
SHOP|SHOPIFY INC - CLASS A|NASDAQ|STK|Communications|Internet|106|0.55|0.05|8
SNOW|SNOWFLAKE INC-CLASS A|NYSE|STK|Technology|Software|154|0.50|0.04|6
BABA|ALIBABA GROUP HOLDING-SP ADR|NYSE|STK|Communications|Internet|85|0.45|0.03|15
NIO|NIO INC - ADR|NYSE|STK|Consumer, Cyclical|Auto Manufacturers|4.36|0.65|-0.05|45
F|FORD MOTOR CO|NYSE|STK|Consumer, Cyclical|Auto Manufacturers|9.9|0.32|0.02|50
GM|GENERAL MOTORS CO|NYSE|STK|Consumer, Cyclical|Auto Manufacturers|53|0.32|0.04|12
BAC|BANK OF AMERICA CORP|NYSE|STK|Financial|Banks|44|0.25|0.04|38
JPM|JPMORGAN CHASE & CO|NYSE|STK|Financial|Banks|240|0.22|0.05|9
WFC|WELLS FARGO & CO|NYSE|STK|Financial|Banks|70|0.27|0.04|16
C|CITIGROUP INC|NYSE|STK|Financial|Banks|70|0.28|0.04|14
GS|GOLDMAN SACHS GROUP INC|NYSE|STK|Financial|Banks|573|0.26|0.05|2
MS|MORGAN STANLEY|NYSE|STK|Financial|Banks|126|0.26|0.05|6
SCHW|SCHWAB (CHARLES) CORP|NYSE|STK|Financial|Diversified Finan Serv|74|0.28|0.04|8
V|VISA INC-CLASS A SHARES|NYSE|STK|Financial|Diversified Finan Serv|316|0.18|0.05|6
MA|MASTERCARD INC - A|NYSE|STK|Financial|Diversified Finan Serv|527|0.19|0.05|3
AXP|AMERICAN EXPRESS CO|NYSE|STK|Financial|Diversified Finan Serv|297|0.25|0.05|3
JNJ|JOHNSON & JOHNSON|NYSE|STK|Consumer, Non-cyclical|Pharmaceuticals|145|0.16|0.03|7
PFE|PFIZER INC|NYSE|STK|Consumer, Non-cyclical|Pharmaceuticals|26.5|0.24|0.00|40
MRK|MERCK & CO. INC.|NYSE|STK|Consumer, Non-cyclical|Pharmaceuticals|99.5|0.22|0.02|10
ABBV|ABBVIE INC|NYSE|STK|Consumer, Non-cyclical|Pharmaceuticals|178|0.22|0.04|6
LLY|ELI LILLY & CO|NYSE|STK|Consumer, Non-cyclical|Pharmaceuticals|772|0.32|0.05|3
BMY|BRISTOL-MYERS SQUIBB CO|NYSE|STK|Consumer, Non-cyclical|Pharmaceuticals|56.6|0.24|0.02|12
UNH|UNITEDHEALTH GROUP INC|NYSE|STK|Consumer, Non-cyclical|Healthcare-Services|506|0.28|0.03|4
CVS|CVS HEALTH CORP|NYSE|STK|Consumer, Non-cyclical|Pharmaceuticals|45|0.32|0.02|9
XOM|EXXON MOBIL CORP|NYSE|STK|Energy|Oil&Gas|107.6|0.22|0.03|15
CVX|CHEVRON CORP|NYSE|STK|Energy|Oil&Gas|145|0.22|0.03|8
COP|CONOCOPHILLIPS|NYSE|STK|Energy|Oil&Gas|99|0.27|0.03|7
OXY|OCCIDENTAL PETROLEUM CORP|NYSE|STK|Energy|Oil&Gas|49.4|0.30|0.02|9
SLB|SLB LTD|NYSE|STK|Energy|Oil&Gas Services|38.3|0.32|0.02|12
KO|COCA-COLA CO/THE|NYSE|STK|Consumer, Non-cyclical|Beverages|62.3|0.15|0.03|14
WMT|WALMART INC|NYSE|STK|Consumer, Cyclical|Retail|90.3|0.20|0.05|18
TGT|TARGET CORP|NYSE|STK|Consumer, Cyclical|Retail|135|0.32|0.02|5
HD|HOME DEPOT INC|NYSE|STK|Consumer, Cyclical|Retail|389|0.22|0.04|3
LOW|LOWE'S COS INC|NYSE|STK|Consumer, Cyclical|Retail|247|0.24|0.04|3
MCD|MCDONALD'S CORP|NYSE|STK|Consumer, Cyclical|Retail|290|0.17|0.04|3
NKE|NIKE INC -CL B|NYSE|STK|Consumer, Cyclical|Apparel|75.7|0.32|0.00|12
DIS|WALT DISNEY CO/THE|NYSE|STK|Communications|Media|111|0.26|0.03|9
T|AT&T INC|NYSE|STK|Communications|Telecommunications|22.8|0.20|0.03|35
VZ|VERIZON COMMUNICATIONS INC|NYSE|STK|Communications|Telecommunications|40|0.18|0.02|20
BA|BOEING CO/THE|NYSE|STK|Industrial|Aerospace/Defense|177|0.35|0.03|8
CAT|CATERPILLAR INC|NYSE|STK|Industrial|Machinery-Constr&Mining|363|0.27|0.05|3
GE|GE AEROSPACE|NYSE|STK|Industrial|Aerospace/Defense|167|0.30|0.05|6
LMT|LOCKHEED MARTIN CORP|NYSE|STK|Industrial|Aerospace/Defense|486|0.20|0.03|1.5
RTX|RTX CORP|NYSE|STK|Industrial|Aerospace/Defense|115.7|0.20|0.04|5
UPS|UNITED PARCEL SERVICE-CL B|NYSE|STK|Industrial|Transportation|126|0.27|0.02|5
FDX|FEDEX CORP|NYSE|STK|Industrial|Transportation|281|0.30|0.03|2
DAL|DELTA AIR LINES INC|NYSE|STK|Consumer, Cyclical|Airlines|60.5|0.38|0.04|9
CCL|CARNIVAL CORP|NYSE|STK|Consumer, Cyclical|Leisure Time|25|0.45|0.04|25
SNAP|SNAP INC - A|NYSE|STK|Communications|Internet|10.8|0.60|0.00|30
PINS|PINTEREST INC- CLASS A|NYSE|STK|Communications|Internet|29|0.45|0.03|10
SPY|SPDR S&P 500 ETF TRUST|ARCA|ETF|||585|0.16|0.05|60
QQQ|INVESCO QQQ TRUST SERIES 1|NASDAQ|ETF|||510|0.20|0.05|35
IWM|ISHARES RUSSELL 2000 ETF|ARCA|ETF|||220|0.22|0.05|30
DIA|SPDR DJIA TRUST|ARCA|ETF|||425|0.15|0.05|3
VOO|VANGUARD S&P 500 ETF|ARCA|ETF|||539|0.16|0.05|6
IVV|ISHARES CORE S&P 500 ETF|ARCA|ETF|||587|0.16|0.05|5
VTI|VANGUARD TOTAL STOCK MKT ETF|ARCA|ETF|||294|0.17|0.05|4
TQQQ|PROSHARES ULTRAPRO QQQ|NASDAQ|ETF|||76.5|0.60|0.08|50
SQQQ|PROSHARES ULTRAPRO SHORT QQQ|NASDAQ|ETF|||30|0.60|-0.50|60
SOXL|DIREXION DAILY SEMICOND BULL 3X|ARCA|ETF|||26|0.90|0.00|80
SMH|VANECK SEMICONDUCTOR ETF|NASDAQ|ETF|||245|0.35|0.05|6
XLF|FINANCIAL SELECT SECTOR SPDR|ARCA|ETF|||48.3|0.18|0.05|40
XLE|ENERGY SELECT SECTOR SPDR|ARCA|ETF|||85.7|0.22|0.03|15
XLK|TECHNOLOGY SELECT SECT SPDR|ARCA|ETF|||232.6|0.22|0.05|5
XLV|HEALTH CARE SELECT SECTOR|ARCA|ETF|||137.6|0.15|0.03|8
XLI|INDUSTRIAL SELECT SECT SPDR|ARCA|ETF|||131.8|0.17|0.04|9
XLY|CONSUMER DISCRETIONARY SELT|ARCA|ETF|||224.7|0.22|0.04|4
XLP|CONSUMER STAPLES SPDR|ARCA|ETF|||78.6|0.13|0.03|10
XLU|UTILITIES SELECT SECTOR SPDR|ARCA|ETF|||75.7|0.17|0.03|12
EEM|ISHARES MSCI EMERGING MARKET|ARCA|ETF|||41.8|0.18|0.03|30
EFA|ISHARES MSCI EAFE ETF|ARCA|ETF|||75.6|0.15|0.03|15
FXI|ISHARES CHINA LARGE-CAP ETF|ARCA|ETF|||30.6|0.30|0.02|40
EWZ|ISHARES MSCI BRAZIL ETF|ARCA|ETF|||22.7|0.28|0.02|25
KRE|SPDR S&P REGIONAL BANKING|ARCA|ETF|||57.7|0.30|0.03|12
ARKK|ARK INNOVATION ETF|ARCA|ETF|||56.8|0.50|0.03|8
GDX|VANECK GOLD MINERS ETF|ARCA|ETF|||34|0.32|0.03|20
GLD|SPDR GOLD SHARES|ARCA|ETF|||242|0.15|0.04|8
SLV|ISHARES SILVER TRUST|ARCA|ETF|||26.3|0.28|0.03|25
USO|UNITED STATES OIL FUND LP|ARCA|ETF|||72|0.32|0.00|4
TLT|ISHARES 20+ YEAR TREASURY BD|NASDAQ|ETF|||87|0.15|0.00|40
IEF|ISHARES 7-10 YEAR TREASURY BD|NASDAQ|ETF|||92.5|0.07|0.01|8
HYG|ISHARES IBOXX HIGH YLD CORP|ARCA|ETF|||78.6|0.07|0.02|35
LQD|ISHARES IBOXX INV GR CORP BD|ARCA|ETF|||104.6|0.08|0.01|20
UVXY|PROSHARES ULTRA VIX ST FUTUR|BATS|ETF|||23|1.00|-0.80|30
"""


def _rows() -> list[tuple[str, dict[str, object]]]:
    out = []
    for line in _TABLE.strip().splitlines():
        sym, name, exchange, kind, industry, category, price, vol, drift, volume = line.split("|")
        out.append((sym, {"name": name, "exchange": exchange, "kind": kind, "industry": industry or "ETF",
                          "category": category or "Exchange Traded Fund", "price": float(price),
                          "vol": float(vol), "drift": float(drift), "volume": float(volume) * 1e6}))
    return out


#: (symbol, SimSymbol fields) for every built-in instrument.
UNIVERSE_ROWS = _rows()
